"""Train the learned detectors' weights from labelled sessions (the train split only), reproducibly.

    python -m workbench.feedback.signals.train                       # -> weights_learned.npz
    python -m workbench.feedback.signals.train --kind embedding      # -> weights_embedding.npz (extra)
    python -m workbench.feedback.signals.train --train FILE [--train FILE ...] --out DIR

The training data is ``tests/data/implicit_eval/train.jsonl`` plus every ``train_extra_*.jsonl`` beside it
(extra sessions written for training only, never part of the frozen test split), unless ``--train`` names
the files.

Per signal (repeat_ask, pushback, positive) a logistic regression over ``features.featurize`` of every
reply; abandonment is one more over ``learned.abandon_features`` of each answer a visit ended on, fed with
the reaction models' *out-of-fold* probabilities (as at run time, on replies they never saw). The
regularisation and the decision threshold are chosen by 5-fold cross-validation inside the training
sessions (all files together), folds by user (a user's wording never helps score that user), with a fixed
seed: the threshold is the one whose cross-validated precision reaches the target (0.90; 0.80 for
abandonment) with the most recall (at least 0.1); else the most precise one (recall at least 0.1). The
gate that lets an answer reach the abandonment model (how sure a pushback/re-ask must be,
``ABANDON_GATES``) is chosen the same way, for the most abandoned sessions found at the target precision,
and stored in the weights.

Precision comes first, for every signal, because this set is rich in signals (about one reply in five)
and real traffic is not: at a base rate ten times lower, the same threshold has far lower precision, while
a missed signal only costs recall. Trading precision for recall is only done where cross-validation says
the precision target still holds.

The file records those cross-validated figures and every training file's name, session count and hash;
``tests/test_signals_training.py`` re-runs this and checks them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from workbench.errors import ValidationError

from ..config import SignalConfig
from .base import SessionView
from .dataset import load_sessions, traces, truth
from .features import FEATURES_VERSION, Pair
from .learned import ABANDON_DENSE, REACTIONS, Model, _abandon_rows, pair_of, reaction_matrix

__all__ = ["DEFAULT_TRAIN", "Trained", "main", "scored_replies", "train"]

DEFAULT_TRAIN = Path("tests/data/implicit_eval/train.jsonl")


def default_train_files(first: Path = DEFAULT_TRAIN) -> list[Path]:
    """``train.jsonl`` and every ``train_extra_*.jsonl`` beside it, in a fixed order."""
    return [first, *sorted(first.parent.glob("train_extra_*.jsonl"))]


def _load_all(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every session of every file (a session id in two files is an error) and what each file was."""
    sessions: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path in paths:
        loaded = load_sessions(path)
        for session in loaded:
            sid = str(session["session_id"])
            if sid in seen:
                raise ValidationError(f"{path}: session {sid} is also in {seen[sid]}")
            seen[sid] = path
        sessions += loaded
        files.append(
            {"file": path.name, "sessions": len(loaded), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        )
    return sessions, files


SEED = 20261204
TARGET_P = {"repeat_ask": 0.9, "pushback": 0.9, "positive": 0.9, "abandon": 0.8}
C_GRID = (0.25, 1.0, 4.0, 16.0)
WEIGHTS = (None, "balanced")
ABANDON_GATES = (0.5, 0.3, 0.2)
MIN_RECALL = 0.1  # a threshold that reaches the precision target only by finding a handful is not used


@dataclass
class Trained:
    model: Model
    cv: dict[str, dict[str, float]]  # signal -> cross-validated precision, recall, threshold, C


def _views(sessions: Sequence[dict[str, Any]], config: SignalConfig) -> list[SessionView]:
    start = datetime(2025, 1, 6, tzinfo=UTC)
    views = []
    for session in sessions:
        built = traces(session, start)
        now = built[-1].created_at.timestamp() + 10 * config.abandon.window_s
        views.append(SessionView(built, config, now))
    return views


def _fit(X: Any, y: np.ndarray, C: float, weight: str | None) -> LogisticRegression:
    clf = LogisticRegression(C=C, class_weight=weight, solver="liblinear", random_state=SEED, max_iter=2000)
    return clf.fit(X, y)


def _threshold(y: np.ndarray, p: np.ndarray, target: float) -> tuple[float, float, float, float]:
    """(threshold, precision, recall, score) on cross-validated probabilities."""
    best: tuple[float, float, float, float] | None = None
    fallback: tuple[float, float, float, float] = (0.5, 0.0, 0.0, -1.0)
    positives = max(1, int(y.sum()))
    for t in np.unique(np.round(p, 4)):
        fired = p >= t
        tp = int((fired & (y == 1)).sum())
        if not fired.any():
            continue
        precision, recall = tp / int(fired.sum()), tp / positives
        if recall < MIN_RECALL:
            continue
        if precision >= target and (best is None or recall > best[2]):
            best = (float(t), precision, recall, recall + 1.0)
        if (precision, recall) > fallback[1:3]:  # the target is out of reach: the most precise threshold
            fallback = (float(t), precision, recall, precision)
    return best if best is not None else fallback


def _select(
    X: Any, y: np.ndarray, groups: np.ndarray, target: float
) -> tuple[float, str | None, float, dict[str, float], np.ndarray]:
    """Cross-validate the grid; return (C, class_weight, threshold, cv figures, out-of-fold probabilities) of
    the best setting."""
    folds = list(GroupKFold(n_splits=min(5, len(set(groups)))).split(X, y, groups))
    best: tuple[float, float | None, str | None, tuple[float, float, float, float], np.ndarray] | None = None
    for C in C_GRID:
        for weight in WEIGHTS:
            p = np.zeros(len(y))
            for fit_idx, test_idx in folds:
                if y[fit_idx].sum() == 0:
                    continue
                p[test_idx] = _fit(X[fit_idx], y[fit_idx], C, weight).predict_proba(X[test_idx])[:, 1]
            found = _threshold(y, p, target)
            if best is None or found[3] > best[3][3] + 1e-9:
                best = (found[3], C, weight, found, p)
    assert best is not None
    _, C, weight, (t, precision, recall, _score), oof = best
    return (
        float(C),
        weight,
        t,
        {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "threshold": round(t, 4),
            "C": float(C),
            "balanced": weight is not None,
            "positives": int(y.sum()),
            "n": len(y),
        },
        oof,
    )


def scored_replies(
    sessions: Sequence[dict[str, Any]], views: Sequence[SessionView]
) -> tuple[list[Pair], dict[str, list[int]], list[str], list[tuple[SessionView, int]]]:
    """Every reply the reaction models score (``pair_of``), with its label per signal, its user (the
    cross-validation group) and where it sits (view, turn index)."""
    pairs: list[Pair] = []
    labels: dict[str, list[int]] = {s: [] for s in REACTIONS}
    groups: list[str] = []
    where: list[tuple[SessionView, int]] = []
    for session, view in zip(sessions, views, strict=True):
        told = truth(session)
        for i in range(1, len(view.turns)):
            pair = pair_of(view, i)
            if pair is None:
                continue
            pairs.append(pair)
            where.append((view, i))
            groups.append(str(session.get("user_id") or session["session_id"]))
            for s in REACTIONS:
                labels[s].append(int((i - 1) in told.signals[s]))
    return pairs, labels, groups, where


def train(paths: Path | Sequence[Path], kind: str = "learned", encoder: Any = None) -> Trained:
    """Fit every signal's model on the sessions of ``paths`` (one file or several)."""
    sessions, files = _load_all([paths] if isinstance(paths, Path) else list(paths))
    config = SignalConfig()
    views = _views(sessions, config)
    pairs, labels, groups, where = scored_replies(sessions, views)
    X = reaction_matrix(pairs, kind, encoder)
    g = np.asarray(groups)
    coef, intercept, threshold, cv, oof = {}, {}, {}, {}, {}
    for s in REACTIONS:
        y = np.asarray(labels[s])
        C, weight, t, cv[s], oof[s] = _select(X, y, g, TARGET_P[s])
        clf = _fit(X, y, C, weight)
        coef[s], intercept[s], threshold[s] = clf.coef_.ravel().astype(np.float32), float(clf.intercept_[0]), t
    # Abandonment: its features include the reaction models' probabilities for the user's last message. They
    # are the out-of-fold ones, as on sessions the models never saw (the final models' own probabilities on
    # their training data are higher than anything they give at run time, and would teach the abandonment
    # model to trust them too much); only replies that score_views would score get one.
    for view in views:
        view.memo["reactions"] = [None] * len(view.turns)
    window = max(config.repeat_ask.window_s, config.pushback.window_s, config.positive.window_s)
    for row, (view, i) in enumerate(where):
        if pairs[row].gap_s <= window or view.turns[i].norm == view.turns[i - 1].norm:
            view.memo["reactions"][i] = {s: float(oof[s][row]) for s in REACTIONS}
    # The gate (how sure a pushback/re-ask must be before the abandonment model looks at the answer) is chosen
    # with the model: the most abandoned sessions found at the target precision, across all sessions.
    by_view = {id(view): i for i, view in enumerate(views)}
    abandoned = sum(truth(session).abandoned is not None for session in sessions)
    chosen: tuple[float, float, Any] | None = None
    for gate in ABANDON_GATES:
        rows = _abandon_rows(views, gate)
        A = np.asarray([f for _, _, f in rows], dtype=np.float32).reshape(len(rows), len(ABANDON_DENSE))
        y = np.asarray([int(truth(sessions[by_view[id(v)]]).abandoned == k) for v, k, _ in rows])
        ga = np.asarray(
            [str(sessions[by_view[id(v)]].get("user_id") or sessions[by_view[id(v)]]["session_id"]) for v, _, _ in rows]
        )
        if y.sum() == 0:
            continue
        C, weight, t, figures, _ = _select(sp.csr_matrix(A), y, ga, TARGET_P["abandon"])
        figures["gate"] = gate
        figures["session_recall"] = round(figures["recall"] * figures["positives"] / max(1, abandoned), 4)
        score = figures["session_recall"] + 1.0 if figures["precision"] >= TARGET_P["abandon"] else figures["precision"]
        if chosen is None or score > chosen[0] + 1e-9:
            chosen = (score, gate, (C, weight, t, figures, A, y))
    if chosen is None:
        raise ValidationError("no abandoned session among the training sessions: cannot fit abandonment")
    _, gate, (C, weight, t, cv["abandon"], A, y) = chosen
    clf = _fit(A, y, C, weight)
    coef["abandon"], intercept["abandon"], threshold["abandon"] = (
        clf.coef_.ravel().astype(np.float32),
        float(clf.intercept_[0]),
        t,
    )
    meta = {
        "features_version": FEATURES_VERSION,
        "seed": SEED,
        "cv": cv,
        "train_files": files,
        "train_sessions": len(sessions),
        "abandon_features": list(ABANDON_DENSE),
        "abandon_gate": gate,
    }
    return Trained(Model(kind, coef, intercept, threshold, meta), cv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--train",
        type=Path,
        action="append",
        help="labelled training sessions (JSONL; repeatable; default: "
        "tests/data/implicit_eval/train.jsonl and every train_extra_*.jsonl beside it)",
    )
    parser.add_argument("--kind", choices=("learned", "embedding"), default="learned")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="directory for weights_KIND.npz")
    args = parser.parse_args(argv)
    paths = args.train or default_train_files()
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"error: no train split at {missing[0]}", file=sys.stderr)
        return 2
    encoder = None
    if args.kind == "embedding":
        from .embeddings import load_encoder

        encoder = load_encoder()
    try:
        trained = train(paths, args.kind, encoder)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out / f"weights_{args.kind}.npz"
    out.write_bytes(trained.model.to_bytes())
    for signal, figures in trained.cv.items():
        print(
            f"{signal:<11} cv precision {figures['precision']:.3f} recall {figures['recall']:.3f} "
            f"threshold {figures['threshold']:.3f} C {figures['C']:g} balanced {figures['balanced']} "
            f"({figures['positives']}/{figures['n']})"
            + (
                f"; gate {figures['gate']:g}, {figures['session_recall']:.3f} of all abandoned sessions"
                if "gate" in figures
                else ""
            )
        )
    for f in trained.model.meta["train_files"]:
        print(f"trained on {f['file']}: {f['sessions']} sessions, sha256 {f['sha256'][:12]}")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
