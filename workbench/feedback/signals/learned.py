"""Learned reaction detectors: per-signal logistic regressions over (previous message, answer, reply).

The default detectors (``detector = "learned"``) need no network and no optional extra: the weights
are small ``.npz`` files shipped in this package (``weights_learned.npz``; ``weights_embedding.npz``
adds MiniLM sentence-embedding features and needs the ``embeddings`` extra). Both are written by
``python -m workbench.feedback.signals.train`` from the labelled train split, with a fixed seed; a
test re-runs it and checks the metrics recorded in the file.

Scoring is batched: ``score_views`` featurizes every reply of every session in a batch with one call
and stores the probabilities in each view's memo; the per-signal detectors then only read them, so a
mining job of thousands of traces costs a few sparse matrix products.

Abandonment is a verdict on the *last* answer of a session that has gone quiet for ``abandon.window_s``,
and silence alone is never enough: a second model scores the evidence that the answer failed (the
user's last message already pushed back or re-asked, the answer declines or sends the user elsewhere in
any language, stops mid-sentence, does not address the message or repeats the previous answer, an
app-reported copy says the opposite) and only a probability above its threshold counts; the strength is
that probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from io import BytesIO
from typing import Any

import numpy as np
import scipy.sparse as sp

from workbench.errors import ConfigError

from .base import SessionView, Turn
from .features import FEATURES_VERSION, Pair, featurize
from .regenerate import resends

__all__ = [
    "ABANDON_DENSE",
    "REACTIONS",
    "Model",
    "abandon_features",
    "embedding_features",
    "load_model",
    "pair_of",
    "score_views",
]

REACTIONS = ("repeat_ask", "pushback", "positive")
# Evidence that an answer failed, enough to let the abandonment model look at it: the user's message it answered
# was a pushback or re-ask with at least this probability (the model then weighs it with the rest). The training
# script chooses it by cross-validation and records it in the weights (``meta["abandon_gate"]``); this is the
# value for weights that do not say.
ABANDON_GATE = 0.5
ABANDON_DENSE = (
    "prev_pushback",
    "prev_repeat",
    "prev_positive",
    "refusal",
    "asks_back",
    "on_topic",
    "repeats_previous",
    "answer_len_log",
    "answer_short",
    "unterminated",
    "turns_log",
    "single_turn",
    "closing_message",
    "bias",
)


@dataclass(frozen=True)
class Model:
    """Weights of one detector family: per signal a coefficient vector, an intercept and a threshold."""

    kind: str  # "learned" | "embedding"
    coef: dict[str, np.ndarray]
    intercept: dict[str, float]
    threshold: dict[str, float]
    meta: dict[str, Any]

    def proba(self, signal: str, X: sp.csr_matrix | np.ndarray) -> np.ndarray:
        z = X @ self.coef[signal] + self.intercept[signal]
        return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64).ravel()))

    def to_bytes(self) -> bytes:
        arrays: dict[str, Any] = {}
        for signal, coef in self.coef.items():
            nz = np.flatnonzero(coef)
            arrays[f"{signal}.index"] = nz.astype(np.int32)
            arrays[f"{signal}.value"] = coef[nz].astype(np.float32)
            arrays[f"{signal}.size"] = np.array([coef.size])
            arrays[f"{signal}.intercept"] = np.array([self.intercept[signal]])
            arrays[f"{signal}.threshold"] = np.array([self.threshold[signal]])
        import json

        arrays["meta"] = np.frombuffer(
            json.dumps({**self.meta, "kind": self.kind}, sort_keys=True).encode(), dtype=np.uint8
        )
        buffer = BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Model:
        import json

        with np.load(BytesIO(data)) as npz:
            meta = json.loads(bytes(npz["meta"]).decode())
            signals = sorted({k.split(".")[0] for k in npz.files if k != "meta"})
            coef, intercept, threshold = {}, {}, {}
            for s in signals:
                vector = np.zeros(int(npz[f"{s}.size"][0]), dtype=np.float32)
                vector[npz[f"{s}.index"]] = npz[f"{s}.value"]
                coef[s] = vector
                intercept[s] = float(npz[f"{s}.intercept"][0])
                threshold[s] = float(npz[f"{s}.threshold"][0])
        if meta.get("features_version") != FEATURES_VERSION:
            raise ConfigError(
                f"detector weights were trained for features v{meta.get('features_version')}, "
                f"this workbench computes v{FEATURES_VERSION}: retrain with "
                "python -m workbench.feedback.signals.train"
            )
        if "abandon" in coef and meta.get("abandon_features") != list(ABANDON_DENSE):
            raise ConfigError(
                f"detector weights were trained on abandonment features {meta.get('abandon_features')}, "
                f"this workbench computes {list(ABANDON_DENSE)}: retrain with "
                "python -m workbench.feedback.signals.train"
            )
        return cls(meta.pop("kind"), coef, intercept, threshold, meta)


@lru_cache(maxsize=4)
def load_model(kind: str = "learned") -> Model:
    """The shipped weights of one family (read once per process)."""
    try:
        data = resources.files(__package__).joinpath(f"weights_{kind}.npz").read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"no shipped weights for the {kind} detector: run python -m workbench.feedback.signals.train"
        ) from None
    return Model.from_bytes(data)


# ----------------------------------------------------------------------------------------- pairs


def pair_of(view: SessionView, i: int) -> Pair | None:
    """The (previous message, answer, reply) of turn ``i``, or None when turn ``i`` is no reply to
    turn ``i - 1`` (first turn, tool continuation, a resend/regeneration, another user, a failed answer)."""
    if i == 0:
        return None
    a, b = view.turns[i - 1], view.turns[i]
    if not b.user_turn or not b.raw.strip() or not view.subject_ok(a) or not view.same_user(a, b):
        return None
    if resends(view, i):
        return None
    return Pair(a.raw, _answer(view, a), b.raw, b.t - a.t_end, a.norm, b.norm)


def _answer(view: SessionView, turn: Turn) -> str:
    return (turn.last.output_text or "")[: view.config.max_chars]


def embedding_features(pairs: Sequence[Pair], encoder: Any) -> np.ndarray:
    """[reply embedding | prev x reply | cos(prev, reply) | cos(answer, reply)] per pair (one encoder batch)."""
    if not pairs:
        return np.zeros((0, 384 * 2 + 2), dtype=np.float32)
    texts = [p.reply for p in pairs] + [p.prev for p in pairs] + [p.answer[:1000] for p in pairs]
    vectors = np.asarray(encoder(texts), dtype=np.float32)
    n = len(pairs)
    reply, prev, answer = vectors[:n], vectors[n : 2 * n], vectors[2 * n :]
    cos_prev = (reply * prev).sum(axis=1, keepdims=True)
    cos_answer = (reply * answer).sum(axis=1, keepdims=True)
    return np.hstack([reply, reply * prev, cos_prev, cos_answer]).astype(np.float32)


def reaction_matrix(pairs: Sequence[Pair], kind: str, encoder: Any = None) -> sp.csr_matrix:
    X = featurize(pairs)
    if kind == "embedding":
        X = sp.hstack([X, sp.csr_matrix(embedding_features(pairs, encoder))], format="csr")
    return X


# ---------------------------------------------------------------------------------- abandonment


def abandon_features(
    turns_n: int,
    prev_probs: dict[str, float] | None,
    last_message: str,
    answer: str,
    previous_answer: str | None,
    on_topic: float,
    repeats: float,
    closing: bool,
    refusal: bool,
    cut: bool,
) -> list[float]:
    probs = prev_probs or {}
    return [
        probs.get("pushback", 0.0),
        probs.get("repeat_ask", 0.0),
        probs.get("positive", 0.0),
        float(refusal),
        float(answer.rstrip().endswith("?")),
        on_topic,
        repeats,
        math.log1p(len(answer)) / 8.0,
        float(len(answer.strip()) < 60),
        float(cut),
        math.log1p(turns_n) / 3.0,
        float(turns_n == 1),
        float(closing),
        1.0,
    ]


def _abandon_rows(
    views: Sequence[SessionView], gate: float = ABANDON_GATE
) -> list[tuple[SessionView, int, list[float]]]:
    """(view, turn, features) for every answer followed by ``abandon.window_s`` of silence (to the next
    turn, or to ``now`` for the last one) *and* some evidence that it failed: the user's message was
    already a pushback or re-ask, the answer declines (``features.non_answer``, any language: a refusal is a
    failure whatever the language), stops mid-sentence, repeats the previous answer, or is empty (how much
    the answer shares with the message is a feature, not a gate: a translation shares nothing, and letting
    low-overlap answers through lowered cross-validated recall).
    The features use only what was known when the answer was given."""
    from rapidfuzz import fuzz

    from .features import non_answer, unterminated
    from .lexicon import normalize
    from .phrases import CLOSING, thanks_phrase

    out = []
    for view in views:
        reactions = view.memo.get("reactions") or [None] * len(view.turns)
        for k, turn in enumerate(view.turns):
            end = view.turns[k + 1].t if k + 1 < len(view.turns) else view.now
            if end is None or end - turn.t_end < view.config.abandon.window_s or not view.subject_ok(turn):
                continue
            answer = _answer(view, turn)
            previous = _answer(view, view.turns[k - 1]) if k > 0 else None
            norm = turn.norm
            closing = bool(CLOSING.match(norm)) or (thanks_phrase(norm) is not None and len(norm) < 60)
            on_topic = fuzz.token_set_ratio(normalize(answer[:600]), norm) / 100.0 if norm else 0.0
            repeats = fuzz.ratio(answer[:600], previous[:600]) / 100.0 if previous else 0.0
            refusal = non_answer(answer)
            cut = unterminated(answer)
            negative = max((reactions[k] or {}).get(s, 0.0) for s in ("pushback", "repeat_ask")) if k else 0.0
            if closing or not (negative >= gate or refusal or cut or repeats >= 0.8 or not answer.strip()):
                continue  # no evidence that the answer failed: silence alone is never abandonment
            features = abandon_features(
                k + 1, reactions[k], turn.raw, answer, previous, on_topic, repeats, closing, refusal, cut
            )
            out.append((view, k, features))
    return out


# ---------------------------------------------------------------------------------------- batch


def score_views(views: Sequence[SessionView], model: Model, encoder: Any = None) -> None:
    """Reaction probabilities per reply, and the abandonment probability of each decided last answer,
    into each view's memo (``reactions``: per turn a dict or None; ``abandon``: probability or None)."""
    pairs: list[Pair] = []
    where: list[tuple[SessionView, int]] = []
    for view in views:
        view.memo["reactions"] = [None] * len(view.turns)
        cfg = view.config
        window = max(cfg.repeat_ask.window_s, cfg.pushback.window_s, cfg.positive.window_s)
        for i in range(1, len(view.turns)):
            pair = pair_of(view, i)
            # Only candidate pairs are featurized: a reply later than every window cannot fire (the same
            # question typed again is a re-ask by rule, see reactions.py), so it costs nothing.
            if pair is not None and (pair.gap_s <= window or view.turns[i].norm == view.turns[i - 1].norm):
                pairs.append(pair)
                where.append((view, i))
    if pairs:
        thresholds = {**model.threshold, **(where[0][0].memo.get("thresholds") or {})}  # type: ignore[dict-item]
        X = reaction_matrix(pairs, model.kind, encoder)
        probs = {signal: model.proba(signal, X) for signal in REACTIONS}
        firing: dict[str, list[int]] = {}
        for row, (view, i) in enumerate(where):
            found = {signal: float(probs[signal][row]) for signal in REACTIONS}
            view.memo["reactions"][i] = found
            for signal in REACTIONS:
                if found[signal] >= thresholds[signal]:
                    firing.setdefault(signal, []).append(row)
        for signal, rows in firing.items():  # the evidence, only for what fires (one product per signal)
            for row, why in zip(rows, _why(model, signal, X, rows), strict=True):
                view, i = where[row]
                view.memo.setdefault("why", {}).setdefault(i, {})[signal] = why
    abandon_probabilities(views, model)


def abandon_probabilities(views: Sequence[SessionView], model: Model) -> None:
    """memo ``abandon``: {turn: (probability, named features)} for every answer a visit ended on."""
    rows = _abandon_rows(views, float(model.meta.get("abandon_gate", ABANDON_GATE)))
    for view in views:
        view.memo["abandon"] = {}  # type: ignore[assignment]
    if rows and "abandon" in model.coef:
        A = np.asarray([features for _, _, features in rows], dtype=np.float32)
        p = model.proba("abandon", A)
        for (view, k, features), prob in zip(rows, p, strict=True):
            view.memo["abandon"][k] = (float(prob), dict(zip(ABANDON_DENSE, features, strict=True)))  # type: ignore[call-overload]


def _why(model: Model, signal: str, X: sp.csr_matrix, rows: list[int], top: int = 4) -> list[dict[str, float]]:
    """Per row, the largest contributions to its verdict: named structural features, plus the reply's
    wording (all hashed n-grams together; they have no names) and, for the embedding family, its meaning."""
    from .features import DENSE, n_features

    coef = model.coef[signal]
    base, end = n_features() - len(DENSE), n_features()
    sub = X[rows]
    wording = np.asarray(sub[:, :base] @ coef[:base]).ravel()
    named = sub[:, base:end].toarray() * coef[base:end]
    meaning = np.asarray(sub[:, end:] @ coef[end:]).ravel() if X.shape[1] > end else np.zeros(len(rows))
    out = []
    for r in range(len(rows)):
        parts = {"reply wording": float(wording[r]), **{DENSE[j]: float(v) for j, v in enumerate(named[r]) if v}}
        if meaning[r]:
            parts["sentence embedding"] = float(meaning[r])
        ranked = sorted(parts.items(), key=lambda kv: -abs(kv[1]))[:top]
        out.append({k: round(v, 3) for k, v in ranked})
    return out
