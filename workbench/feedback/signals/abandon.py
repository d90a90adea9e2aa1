"""abandon: no follow-up within a window after an answer (weak: silence may also mean satisfaction).

Decided per answer from the gap to the next turn, or, for the last turn, from ``now``: with ``now``
None (or not yet past the window) the last turn is undecided, so an in-progress session is never
flagged. Because the rule only looks at the gap, the verdict never changes when more turns arrive
later, which keeps incremental mining consistent. Closing turns ("thanks, bye") and answers the app
reported as used (copied) are not abandonment.
"""

from __future__ import annotations

from .base import DetectorInfo, Finding, SessionView, make_finding
from .lexicon import has_content
from .phrases import CLOSING, thanks_phrase
from .positive import reported_positive

__all__ = ["INFO", "detect_abandon"]

INFO = DetectorInfo("abandon", 1, "abandon")


def detect_abandon(view: SessionView) -> list[Finding]:
    cfg = view.config.abandon
    turns = view.turns
    if len(turns) < cfg.min_turns:
        return []
    findings: list[Finding] = []
    for i, turn in enumerate(turns):
        if not view.subject_ok(turn):
            continue
        if i + 1 < len(turns):
            gap = turns[i + 1].t - turn.t_end
            evidence: dict[str, object] = {"next_trace_id": turns[i + 1].ask_id}
        elif view.now is not None:
            gap = view.now - turn.t_end
            evidence = {"next_trace_id": None}
        else:
            continue
        if gap < cfg.window_s:
            continue
        if _closing(turn.norm) or reported_positive(view, i):
            continue
        evidence.update(trace_ids=[turn.answer_id], silence_s=round(gap, 3), window_s=cfg.window_s)
        findings.append(make_finding(INFO, turn, "", cfg.strength, evidence, turn.t_end + cfg.window_s))
    return findings


def _closing(norm: str) -> bool:
    """ "thanks, bye" closes a conversation; "thanks! how do I X?" asks a new question."""
    found = CLOSING.match(norm)
    if found is not None:
        return not has_content(norm[found.end() :], 2)
    phrase = thanks_phrase(norm)
    return phrase is not None and norm.startswith(phrase) and not has_content(norm[len(phrase) :], 2)
