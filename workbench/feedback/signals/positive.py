"""positive: thanks in the next turn, an app-reported copy/accept, or (opt-in) a plain next question.

Thanks that come with a "but", a rejection or a "no" are not approval ("thanks, but that's wrong",
"no thanks"), so a reply that pushes back never counts as positive.
"""

from __future__ import annotations

from .base import DetectorInfo, Finding, SessionView, make_finding
from .phrases import GRATITUDE_VETO, thanks_phrase
from .pushback import pushback_of
from .regenerate import resends
from .repeat_ask import repeat_of

__all__ = ["INFO", "detect_positive", "reported_positive"]

INFO = DetectorInfo("positive", 1, "positive")


def reported_positive(view: SessionView, turn_index: int) -> list[str]:
    """Metadata keys by which the app reported that this turn's answer was used (copied, accepted...)."""
    meta = view.turns[turn_index].metadata
    if not meta:
        return []
    return [key for key in view.config.positive.metadata_keys if meta.get(key)]


def detect_positive(view: SessionView) -> list[Finding]:
    cfg = view.config.positive
    findings: list[Finding] = []
    for i, turn in enumerate(view.turns):
        if not view.subject_ok(turn):
            continue
        keys = reported_positive(view, i)
        if keys:
            evidence = {"trace_ids": [turn.answer_id], "reason": "reported", "metadata_keys": keys}
            findings.append(make_finding(INFO, turn, "meta", cfg.metadata_strength, evidence, turn.t_end))
    for i in range(1, len(view.turns)):
        a, b = view.turns[i - 1], view.turns[i]
        if not b.user_turn or not view.subject_ok(a) or not view.same_user(a, b):
            continue
        if b.t - a.t_end > cfg.window_s or pushback_of(view, i) is not None or resends(view, i):
            continue
        head = b.norm[:300]
        thanks = thanks_phrase(head)
        evidence: dict[str, object] = {"trace_ids": [a.answer_id, b.ask_id], "reply_trace_id": b.ask_id}
        if thanks is not None and not GRATITUDE_VETO.search(head):
            evidence.update(reason="thanks", phrase=thanks)
            findings.append(make_finding(INFO, a, b.ask_id, cfg.thanks_strength, evidence, b.t))
        elif cfg.infer_continuation and not _repeats(view, i, i - 1):
            evidence.update(reason="continued")
            findings.append(make_finding(INFO, a, b.ask_id, cfg.continuation_strength, evidence, b.t))
    return findings


def _repeats(view: SessionView, i: int, j: int) -> bool:
    hit = repeat_of(view, i)
    return hit is not None and hit[0] == j
