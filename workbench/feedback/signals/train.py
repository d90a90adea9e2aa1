"""Train the learned detectors' weights from labelled sessions (the train split only), reproducibly.

    python -m workbench.feedback.signals.train                       # -> weights_learned.npz
    python -m workbench.feedback.signals.train --kind embedding      # -> weights_embedding.npz (extra)
    python -m workbench.feedback.signals.train --train FILE --out DIR

Per signal (repeat_ask, pushback, positive) a logistic regression over ``features.featurize`` of every
reply in the train sessions; abandonment is one more over ``learned.abandon_features`` of each session's
last answer. The regularisation and the decision threshold are chosen by 5-fold cross-validation
*inside* the train file, folds by user (a user's wording never helps score that user), with a fixed
seed: the threshold is the one whose cross-validated precision reaches the target (0.90; 0.80 for
abandonment) with the most recall (at least 0.1); else the most precise one (recall at least 0.1).
Precision comes first
because this set is rich in signals (about one reply in five) and real traffic is not: at a base rate
ten times lower, the same threshold has far lower precision, while a missed signal only costs recall.
The file records those cross-validated figures and the train file's hash;
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

from ..config import SignalConfig
from .base import SessionView
from .dataset import load_sessions, traces, truth
from .features import FEATURES_VERSION
from .learned import ABANDON_DENSE, REACTIONS, Model, _abandon_rows, pair_of, reaction_matrix

__all__ = ["DEFAULT_TRAIN", "Trained", "main", "train"]

DEFAULT_TRAIN = Path("tests/data/implicit_eval/train.jsonl")
SEED = 20261204
TARGET_P = {"repeat_ask": 0.9, "pushback": 0.9, "positive": 0.9, "abandon": 0.8}
C_GRID = (0.25, 1.0, 4.0, 16.0)
WEIGHTS = (None, "balanced")
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
) -> tuple[float, str | None, float, dict[str, float]]:
    """Cross-validate the grid; return (C, class_weight, threshold, cv figures) of the best setting."""
    folds = list(GroupKFold(n_splits=min(5, len(set(groups)))).split(X, y, groups))
    best: tuple[float, float | None, str | None, tuple[float, float, float, float]] | None = None
    for C in C_GRID:
        for weight in WEIGHTS:
            p = np.zeros(len(y))
            for fit_idx, test_idx in folds:
                if y[fit_idx].sum() == 0:
                    continue
                p[test_idx] = _fit(X[fit_idx], y[fit_idx], C, weight).predict_proba(X[test_idx])[:, 1]
            found = _threshold(y, p, target)
            if best is None or found[3] > best[3][3] + 1e-9:
                best = (found[3], C, weight, found)
    assert best is not None
    _, C, weight, (t, precision, recall, _score) = best
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
    )


def train(path: Path, kind: str = "learned", encoder: Any = None) -> Trained:
    sessions = load_sessions(path)
    config = SignalConfig()
    views = _views(sessions, config)
    pairs, labels, groups = [], {s: [] for s in REACTIONS}, []
    for session, view in zip(sessions, views, strict=True):
        told = truth(session)
        for i in range(1, len(view.turns)):
            pair = pair_of(view, i)
            if pair is None:
                continue
            pairs.append(pair)
            groups.append(str(session.get("user_id") or session["session_id"]))
            for s in REACTIONS:
                labels[s].append(int((i - 1) in told.signals[s]))
    X = reaction_matrix(pairs, kind, encoder)
    g = np.asarray(groups)
    coef, intercept, threshold, cv = {}, {}, {}, {}
    for s in REACTIONS:
        y = np.asarray(labels[s])
        C, weight, t, cv[s] = _select(X, y, g, TARGET_P[s])
        clf = _fit(X, y, C, weight)
        coef[s], intercept[s], threshold[s] = clf.coef_.ravel().astype(np.float32), float(clf.intercept_[0]), t
    # Abandonment: the reaction model's own (final) probabilities feed the abandon features.
    interim = Model(kind, coef, intercept, threshold, {"features_version": FEATURES_VERSION})
    from .learned import score_views

    score_views(views, interim, encoder)
    rows = _abandon_rows(views)
    by_view = {id(view): i for i, view in enumerate(views)}
    A = np.asarray([f for _, _, f in rows], dtype=np.float32)
    y = np.asarray([int(truth(sessions[by_view[id(v)]]).abandoned == k) for v, k, _ in rows])
    ga = np.asarray(
        [str(sessions[by_view[id(v)]].get("user_id") or sessions[by_view[id(v)]]["session_id"]) for v, _, _ in rows]
    )
    C, weight, t, cv["abandon"] = _select(sp.csr_matrix(A), y, ga, TARGET_P["abandon"])
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
        "train_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "train_sessions": len(sessions),
        "abandon_features": list(ABANDON_DENSE),
    }
    return Trained(Model(kind, coef, intercept, threshold, meta), cv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN, help="labelled train split (JSONL)")
    parser.add_argument("--kind", choices=("learned", "embedding"), default="learned")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="directory for weights_KIND.npz")
    args = parser.parse_args(argv)
    if not args.train.exists():
        print(f"error: no train split at {args.train}", file=sys.stderr)
        return 2
    encoder = None
    if args.kind == "embedding":
        from .embeddings import load_encoder

        encoder = load_encoder()
    trained = train(args.train, args.kind, encoder)
    out = args.out / f"weights_{args.kind}.npz"
    out.write_bytes(trained.model.to_bytes())
    for signal, figures in trained.cv.items():
        print(
            f"{signal:<11} cv precision {figures['precision']:.3f} recall {figures['recall']:.3f} "
            f"threshold {figures['threshold']:.3f} C {figures['C']:g} balanced {figures['balanced']} "
            f"({figures['positives']}/{figures['n']})"
        )
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
