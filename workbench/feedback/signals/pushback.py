"""pushback: the next user turn rejects the answer, doubts it, or pastes an edited version of it.

Phrases are anchored to what a rejection looks like -- a subject that points at the answer ("that",
"it", "your code") followed by a verdict, or a reply that *starts* with "no"/"nope" and goes on to
correct -- because the words alone ("wrong", "doesn't work", "no") are everywhere in ordinary
questions ("what's wrong with my code?", "no problem, thanks", "why doesn't my loop work?").
An edited paste is a reply whose text (minus a short preface like "fixed:") is close to the answer
but not identical; its text becomes the proposed correction.
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz

from .base import DetectorInfo, Finding, SessionView, make_finding
from .lexicon import normalize
from .phrases import match_rejection
from .regenerate import resends

__all__ = ["INFO", "detect_pushback", "find_edit", "pushback_of"]

INFO = DetectorInfo("pushback", 1, "pushback")

_FENCE_RE = re.compile(r"^```\w*\s*$|^\s*>\s?", re.MULTILINE)


def _squash(text: str) -> str:
    return normalize(_FENCE_RE.sub("", text))


def _cores(reply: str) -> list[str]:
    """The reply, and the reply without a short preface or trailing question (where it has one)."""
    cores = [reply]
    head, sep, rest = reply.partition("\n")
    if sep and len(head) <= 150 and rest.strip():
        cores.append(rest)
    colon = reply.find(":", 0, 150)
    if colon > 0:
        cores.append(reply[colon + 1 :])
    paragraphs = reply.split("\n\n")
    if len(paragraphs) > 1:
        cores.append("\n\n".join(paragraphs[:-1]))
        cores.append("\n\n".join(paragraphs[1:]))
    return cores


def find_edit(answer: str | None, reply: str, min_chars: int, low: float, high: float) -> tuple[float, str] | None:
    """(similarity, edited text) when ``reply`` is an edited paste of ``answer``, else None.

    A paste at or above ``high`` is a quote (the user is asking about the answer), not an edit.
    """
    if not answer or len(answer) < min_chars or len(reply) < 0.5 * len(answer):
        return None
    if len(reply) > 2.5 * len(answer) + 200:
        return None
    target = _squash(answer)
    best, best_core = 0.0, ""
    for core in _cores(reply):
        squashed = _squash(core)
        if len(squashed) < 0.5 * len(target):
            continue
        score = fuzz.ratio(target, squashed) / 100.0
        if score >= high:
            return None
        if score > best:
            best, best_core = score, core
    if best >= low:
        return best, best_core.strip()
    return None


def pushback_of(view: SessionView, i: int) -> dict[str, object] | None:
    """Evidence that turn ``i`` pushes back on turn ``i - 1``, or None (memoised)."""
    memo = view.slot("pushback")
    if memo[i] is ...:
        memo[i] = _find(view, i)
    return memo[i]


def _find(view: SessionView, i: int) -> dict[str, object] | None:
    if i == 0 or resends(view, i):  # a resend is not a reply
        return None
    a, b = view.turns[i - 1], view.turns[i]
    cfg = view.config.pushback
    if not b.user_turn or not b.norm or not view.subject_ok(a) or not view.same_user(a, b):
        return None
    if b.t - a.t_end > cfg.window_s:
        return None
    answer = (a.last.output_text or "")[: view.config.max_chars]
    evidence: dict[str, object] = {}
    strength = 0.0
    phrase = None
    if b.complaint or len(b.norm) <= 24:  # a bare "no." / "wrong" is short; anything else needs a phrase
        phrase = match_rejection(b.norm, answer.rstrip().endswith("?"))
    if phrase is not None:
        kind, matched = phrase
        evidence.update(kind=kind, phrase=matched)
        strength = cfg.phrase_strength if kind == "rejection" else cfg.doubt_strength
    edit = find_edit(answer, b.raw, cfg.edit_min_chars, cfg.edit_min_similarity, cfg.edit_max_similarity)
    if edit is not None:
        similarity, edited = edit
        evidence.update(edited_text=edited, similarity=round(similarity, 4))
        evidence.setdefault("kind", "edit")
        strength = max(strength, cfg.edit_strength)
    if not evidence:
        return None
    evidence["strength"] = strength
    return evidence


def detect_pushback(view: SessionView) -> list[Finding]:
    findings: list[Finding] = []
    for i in range(1, len(view.turns)):
        hit = pushback_of(view, i)
        if hit is None:
            continue
        a, b = view.turns[i - 1], view.turns[i]
        evidence = {"trace_ids": [a.answer_id, b.ask_id], "reply_trace_id": b.ask_id, **hit}
        strength = float(evidence.pop("strength"))  # type: ignore[arg-type]
        text = evidence.get("edited_text")
        findings.append(
            make_finding(INFO, a, b.ask_id, strength, evidence, b.t, text if isinstance(text, str) else None)
        )
    return findings
