"""regenerate: the same input is sent again, or the app marks the call as a regeneration.

"The same input" is the same conversation (by default without system/developer messages, which may
carry a clock or a prompt version) ending in the same user turn. A resend after a *failed* call is a
retry, not a verdict on an answer, so failed calls are skipped as subjects (``skip_errors``).
"""

from __future__ import annotations

from typing import Any

from .base import DetectorInfo, Finding, SessionView, Turn, make_finding

__all__ = ["INFO", "detect_regenerate", "regenerate_of", "resends"]

INFO = DetectorInfo("regenerate", 1, "regenerate")
_SYSTEM_ROLES = frozenset({"system", "developer"})


def _conversation(turn: Turn, ignore_system: bool) -> list[Any]:
    messages = turn.first.input or []
    if ignore_system:
        return [m for m in messages if not (isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES)]
    return messages


def _reported(turn: Turn, keys: tuple[str, ...]) -> bool:
    meta = turn.metadata
    return bool(meta) and any(meta.get(key) for key in keys)


def regenerate_of(view: SessionView, i: int) -> tuple[int, str] | None:
    """(index of the regenerated turn, "identical_input" | "reported") for turn ``i``, or None (memoised)."""
    memo = view.slot("regenerate")
    if memo[i] is ...:
        memo[i] = _find(view, i)
    return memo[i]


def _find(view: SessionView, i: int) -> tuple[int, str] | None:
    if i == 0:
        return None
    cfg = view.config.regenerate
    b = view.turns[i]
    reported = _reported(b, cfg.metadata_keys)
    if not reported and not b.user_turn:
        return None
    conversation_b: list[Any] | None = None
    fallback: int | None = None
    for j in range(i - 1, max(0, i - cfg.lookback) - 1, -1):
        a = view.turns[j]
        if not reported and b.t - a.t_end > cfg.window_s:
            break
        if not view.same_user(a, b) or not view.subject_ok(a):
            continue
        if fallback is None:
            fallback = j
        if a.norm != b.norm:
            continue
        if conversation_b is None:
            conversation_b = _conversation(b, cfg.ignore_system)
        if _conversation(a, cfg.ignore_system) == conversation_b:
            return j, "reported" if reported else "identical_input"
        if reported:
            return j, "reported"
    if reported and fallback is not None:
        return fallback, "reported"
    return None


def detect_regenerate(view: SessionView) -> list[Finding]:
    cfg = view.config.regenerate
    findings: list[Finding] = []
    for i in range(1, len(view.turns)):
        hit = regenerate_of(view, i)
        if hit is None:
            continue
        j, reason = hit
        a, b = view.turns[j], view.turns[i]
        strength = cfg.strength_reported if reason == "reported" else cfg.strength_identical
        evidence = {
            "trace_ids": [a.answer_id, b.ask_id],
            "regenerated_by": b.ask_id,
            "reason": reason,
            "gap_s": round(b.t - a.t_end, 3),
        }
        findings.append(make_finding(INFO, a, b.ask_id, strength, evidence, b.t))
    return findings


def resends(view: SessionView, i: int) -> bool:
    """Turn ``i`` re-sends an earlier input (a regeneration, or the same input resent after the window):
    either way it is not a reply to the previous answer."""
    if regenerate_of(view, i) is not None:
        return True
    if i == 0:
        return False
    a, b = view.turns[i - 1], view.turns[i]
    ignore = view.config.regenerate.ignore_system
    return a.norm == b.norm and _conversation(a, ignore) == _conversation(b, ignore)
