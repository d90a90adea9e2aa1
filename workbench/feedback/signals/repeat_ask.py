"""repeat_ask: the user asks substantially the same thing again soon after an answer.

Lexical by default (see ``lexicon.compare_questions`` for why it is asymmetric). With
``repeat_ask.use_embeddings`` and an encoder, a paraphrase the lexical test missed counts when its
MiniLM cosine clears ``embedding_threshold`` -- but never past a hard block (a new number, name,
constraint, clause or follow-up opener), which is where embeddings are weakest.
"""

from __future__ import annotations

from typing import Any

from .base import DetectorInfo, Finding, SessionView, make_finding
from .lexicon import compare_questions
from .regenerate import regenerate_of

__all__ = ["INFO", "detect_repeat_ask", "repeat_of"]

INFO = DetectorInfo("repeat_ask", 1, "repeat_ask")
# Lexical rejections that only mean "not enough overlap"; a paraphrase may still repeat.
_SOFT = frozenset({"low_coverage", "new_terms", "no_content"})


def repeat_of(view: SessionView, i: int) -> tuple[int, float, str] | None:
    """(index of the re-asked turn, similarity, method) for turn ``i``, or None (memoised)."""
    memo = view.slot("repeat_ask")
    if memo[i] is ...:
        memo[i] = _find(view, i)
    return memo[i]


def _find(view: SessionView, i: int) -> tuple[int, float, str] | None:
    b = view.turns[i]
    if i == 0 or not b.user_turn or not b.norm or regenerate_of(view, i) is not None:
        return None
    cfg = view.config.repeat_ask
    best: tuple[int, float, str] | None = None
    for j in range(i - 1, max(0, i - cfg.lookback) - 1, -1):
        a = view.turns[j]
        if b.t - a.t_end > cfg.window_s:
            break
        if not a.user_turn or not view.same_user(a, b) or not view.subject_ok(a):
            continue
        score, reason = compare_questions(
            a.terms,
            b.terms,
            min_coverage=cfg.min_coverage,
            min_coverage_reask=cfg.min_coverage_reask,
            max_novel_ratio=cfg.max_novel_ratio,
        )
        method = "lexical"
        if score <= 0 and cfg.use_embeddings and view.encoder is not None and reason in _SOFT:
            cosine = _cosine(view, j, i)
            score, method = (cosine, "embedding") if cosine >= cfg.embedding_threshold else (0.0, "")
        if score > 0 and (best is None or score > best[1]):  # the closest earlier question wins
            best = (j, score, method)
    return best


def _cosine(view: SessionView, j: int, i: int) -> float:
    """Cosine of two turns' embeddings; the session's user texts are encoded once, in one batch."""
    vectors: list[Any] = view.memo.get("embedding") or []
    if not vectors:
        vectors = list(view.encoder([turn.raw for turn in view.turns]))
        view.memo["embedding"] = vectors
    return float(vectors[j] @ vectors[i])


def detect_repeat_ask(view: SessionView) -> list[Finding]:
    findings: list[Finding] = []
    for i in range(1, len(view.turns)):
        hit = repeat_of(view, i)
        if hit is None:
            continue
        j, similarity, method = hit
        a, b = view.turns[j], view.turns[i]
        evidence = {
            "trace_ids": [a.answer_id, b.ask_id],
            "repeated_by": b.ask_id,
            "similarity": round(similarity, 4),
            "method": method,
            "gap_s": round(b.t - a.t_end, 3),
        }
        findings.append(make_finding(INFO, a, b.ask_id, similarity, evidence, b.t))
    return findings
