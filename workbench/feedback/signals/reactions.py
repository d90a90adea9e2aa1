"""The learned family's detectors: they read the probabilities ``learned.score_views`` left in the view.

Each finding says which detector produced it (``detector``: learned, embedding or llm), the
probability and the threshold it cleared, and what drove the verdict (``why``: the largest feature
contributions), so the triage screen can show the evidence rather than a bare label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import DetectorInfo, Finding, SessionView, make_finding
from .positive import reported_positive
from .pushback import find_edit

__all__ = ["VERSION", "family_detectors"]

VERSION = 1
Run = Callable[[SessionView], list[Finding]]


def _threshold(view: SessionView, signal: str) -> float:
    return float(view.memo["thresholds"][signal])  # type: ignore[call-overload]


def _typed_again(view: SessionView, i: int) -> bool:
    """The same question typed again after its answer (not a resend): a repeat-ask by rule."""
    a, b = view.turns[i - 1], view.turns[i]
    return bool(b.norm) and a.norm == b.norm


def _fires(view: SessionView, i: int, signal: str) -> float | None:
    probs = view.memo.get("reactions")
    found = probs[i] if probs else None
    if not found:
        return None
    if signal == "repeat_ask" and _typed_again(view, i):
        return max(found[signal], 0.99)
    p = found[signal]
    if p < _threshold(view, signal):
        return None
    if signal in ("pushback", "positive"):  # never both: the clearer verdict wins
        other = "positive" if signal == "pushback" else "pushback"
        if found[other] >= _threshold(view, other) and (
            found[other] / _threshold(view, other) > p / _threshold(view, signal)
        ):
            return None
    return p


def _evidence(view: SessionView, i: int, signal: str, p: float, family: str) -> dict[str, Any]:
    a, b = view.turns[i - 1], view.turns[i]
    why = (view.memo.get("why") or {}).get(i, {}).get(signal)  # type: ignore[attr-defined]
    if signal == "repeat_ask" and _typed_again(view, i):
        why = {"typed again (rule)": 1.0}
    return {
        "trace_ids": [a.answer_id, b.ask_id],
        "reply_trace_id": b.ask_id,
        "detector": family,
        "probability": round(p, 4),
        "threshold": round(_threshold(view, signal), 4),
        "why": why or {},
        "gap_s": round(b.t - a.t_end, 3),
    }


def family_detectors(family: str) -> list[tuple[DetectorInfo, Run]]:
    """(info, run) for repeat_ask, pushback, positive and abandon of one scoring family."""

    def reaction(signal: str) -> tuple[DetectorInfo, Run]:
        info = DetectorInfo(f"{signal}.{family}", VERSION, signal)  # type: ignore[arg-type]

        def run(view: SessionView) -> list[Finding]:
            findings: list[Finding] = []
            if signal == "positive":
                for i, turn in enumerate(view.turns):
                    keys = reported_positive(view, i)
                    if keys and view.subject_ok(turn):
                        evidence = {
                            "trace_ids": [turn.answer_id],
                            "reason": "reported",
                            "metadata_keys": keys,
                            "detector": "app",
                        }
                        findings.append(
                            make_finding(
                                info, turn, "meta", view.config.positive.metadata_strength, evidence, turn.t_end
                            )
                        )
            window = getattr(view.config, signal).window_s
            for i in range(1, len(view.turns)):
                p = _fires(view, i, signal)
                if p is None:
                    continue
                a, b = view.turns[i - 1], view.turns[i]
                if b.t - a.t_end > window and not (signal == "repeat_ask" and _typed_again(view, i)):
                    continue  # (the same question typed again is a re-ask however late)
                evidence = _evidence(view, i, signal, p, family)
                text = None
                if signal == "pushback":
                    cfg = view.config.pushback
                    answer = (a.last.output_text or "")[: view.config.max_chars]
                    edit = find_edit(
                        answer, b.raw, cfg.edit_min_chars, cfg.edit_min_similarity, cfg.edit_max_similarity
                    )
                    if edit is not None:
                        evidence.update(edited_text=edit[1], similarity=round(edit[0], 4))
                        text = edit[1]
                findings.append(make_finding(info, a, b.ask_id, p, evidence, b.t, text))
            return findings

        return info, run

    abandon_info = DetectorInfo(f"abandon.{family}", VERSION, "abandon")

    def abandon(view: SessionView) -> list[Finding]:
        findings: list[Finding] = []
        for k, (p, features) in sorted((view.memo.get("abandon") or {}).items()):  # type: ignore[attr-defined]
            if p < _threshold(view, "abandon") or reported_positive(view, k):
                continue
            turn = view.turns[k]
            end = view.turns[k + 1].t if k + 1 < len(view.turns) else (view.now or turn.t_end)
            shown = {name: round(v, 3) for name, v in features.items() if name != "bias" and v}
            evidence = {
                "trace_ids": [turn.answer_id],
                "detector": family,
                "probability": round(p, 4),
                "threshold": round(_threshold(view, "abandon"), 4),
                "evidence": shown,
                "silence_s": round(end - turn.t_end, 3),
            }
            findings.append(
                make_finding(abandon_info, turn, "", p, evidence, turn.t_end + view.config.abandon.window_s)
            )
        return findings

    return [reaction("repeat_ask"), reaction("pushback"), reaction("positive"), (abandon_info, abandon)]
