"""abandon (lexical family): the session ended after an answer that failed, by rules.

Silence only says that a visit ended: an answer is looked at once ``abandon.window_s`` has passed after
it with no new turn (for the last answer, measured to ``now``; None or earlier: undecided, so an
in-progress session is never flagged). It is abandonment only with evidence, available when the answer
was given, that it failed (so the verdict never changes when the user comes back later and mining
stays incremental), and ``strength`` says how sure:

* the user's last message already pushed back on or re-asked the previous answer, and this answer was
  the retry they walked away from (0.6; 0.8 when it is nearly the same answer again);
* the answer refuses or does not answer (an "I can't help with that") (0.7);
* the answer is empty or cut off (0.5).

Closing turns ("thanks, bye") and answers the app reported as used (copied) are never abandonment.
The learned families score the same evidence with a trained model instead (``learned.py``).
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz

from .base import DetectorInfo, Finding, SessionView, make_finding
from .features import _REFUSAL
from .lexicon import has_content
from .phrases import CLOSING, thanks_phrase
from .positive import reported_positive
from .pushback import pushback_of
from .repeat_ask import repeat_of

__all__ = ["INFO", "detect_abandon", "failure_evidence"]

INFO = DetectorInfo("abandon", 2, "abandon")
_CUT = re.compile(r"[\w,;:(\-]$")


def failure_evidence(view: SessionView, k: int) -> tuple[float, dict[str, object]] | None:
    """(strength, evidence) that answer ``k`` failed, or None."""
    turn = view.turns[k]
    answer = (turn.last.output_text or "").strip()
    evidence: dict[str, object] = {}
    strength = 0.0
    if k > 0 and (pushback_of(view, k) is not None or (repeat_of(view, k) or (None,))[0] == k - 1):
        previous = (view.turns[k - 1].last.output_text or "").strip()
        same = fuzz.ratio(previous[:600], answer[:600]) / 100.0 if previous and answer else 0.0
        evidence["after_negative_signal"] = view.turns[k - 1].answer_id
        evidence["same_as_previous"] = round(same, 3)
        strength = max(strength, 0.8 if same >= 0.8 else 0.6)
    if answer and _REFUSAL.search(answer[:400]):
        evidence["refusal"] = True
        strength = max(strength, 0.7)
    if not answer or (len(answer) > 200 and _CUT.search(answer)):
        evidence["empty_or_cut_off"] = True
        strength = max(strength, 0.5)
    return (strength, evidence) if evidence else None


def detect_abandon(view: SessionView) -> list[Finding]:
    cfg = view.config.abandon
    turns = view.turns
    if len(turns) < cfg.min_turns:
        return []
    findings: list[Finding] = []
    for k, turn in enumerate(turns):
        end = turns[k + 1].t if k + 1 < len(turns) else view.now
        if end is None or end - turn.t_end < cfg.window_s or not view.subject_ok(turn):
            continue
        if _closing(turn.norm) or reported_positive(view, k):
            continue
        found = failure_evidence(view, k)
        if found is None:
            continue
        strength, evidence = found
        evidence.update(
            trace_ids=[turn.answer_id], silence_s=round(end - turn.t_end, 3), window_s=cfg.window_s, detector="lexical"
        )
        findings.append(make_finding(INFO, turn, "", strength, evidence, turn.t_end + cfg.window_s))
    return findings


def _closing(norm: str) -> bool:
    """ "thanks, bye" closes a conversation; "thanks! how do I X?" asks a new question."""
    found = CLOSING.match(norm)
    if found is not None:
        return not has_content(norm[found.end() :], 2)
    phrase = thanks_phrase(norm)
    return phrase is not None and norm.startswith(phrase) and not has_content(norm[len(phrase) :], 2)
