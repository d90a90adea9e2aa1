"""Reading a judge's answer back into a score, strictly.

An answer that has no score, has two different scores, or a score off the rubric's scale comes back
as ``status="unparsed"`` with the reason: never a silent default, so a broken judge prompt shows up
as unparsed records instead of skewing the statistics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from workbench.errors import JudgeError
from workbench.judge.rubrics import PAIRWISE_A, PAIRWISE_B, Rubric, scale_value

__all__ = ["ParsedAnswer", "parse_answer", "swap_preference"]


@dataclass(frozen=True)
class ParsedAnswer:
    """Result of reading one judge answer; ``score`` is None exactly when ``status`` is "unparsed"."""

    status: Literal["ok", "unparsed"]
    score: float | None
    label: str | None
    rationale: str | None
    error: str | None
    raw: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def require(self) -> float:
        """The score, or a JudgeError saying why there is none."""
        if self.score is None:
            raise JudgeError(f"judge answer could not be parsed: {self.error}")
        return self.score


def swap_preference(score: float) -> float:
    """Map a pairwise verdict given with the outputs swapped back to the original numbering."""
    return {PAIRWISE_A: PAIRWISE_B, PAIRWISE_B: PAIRWISE_A}.get(score, score)


def _convert(rubric: Rubric, raw: Any) -> float | None:
    spec = rubric.parse
    if isinstance(raw, str) and spec.choices:
        key = raw.strip().casefold() if spec.ignore_case else raw.strip()
        table = {(k.casefold() if spec.ignore_case else k): v for k, v in spec.choices.items()}
        if key in table:
            return scale_value(rubric.scale, table[key])
    return scale_value(rubric.scale, raw)


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in the text (answers often wrap JSON in prose or ``` fences)."""
    decoder, found, pos = json.JSONDecoder(), [], text.find("{")
    while pos != -1:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            pos = text.find("{", pos + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        pos = text.find("{", end)
    return found


def _dig(obj: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


def parse_answer(rubric: Rubric, text: str) -> ParsedAnswer:
    """Read the judge's answer strictly: no match, ambiguity or an off-scale value is "unparsed"."""

    def unparsed(reason: str) -> ParsedAnswer:
        return ParsedAnswer("unparsed", None, None, None, reason, text)

    spec = rubric.parse
    rationale: str | None = None
    if not isinstance(text, str) or not text.strip():
        return unparsed("empty answer")
    if spec.method == "regex":
        regex = spec.regex()
        group: str | int = "score" if "score" in regex.groupindex else 1
        tokens: list[Any] = [m.group(group) for m in regex.finditer(text)]
        if not tokens:
            return unparsed(f"no match for pattern {spec.pattern!r}")
    else:
        objects = [o for o in _json_objects(text) if _dig(o, spec.field or "")[0]]
        if not objects:
            return unparsed(f"no JSON object with field {spec.field!r} in the answer")
        tokens = [_dig(o, spec.field or "")[1] for o in objects]
        if spec.rationale_field:
            found, value = _dig(objects[0], spec.rationale_field)
            rationale = str(value) if found and value is not None else None
    scores = [_convert(rubric, token) for token in tokens]
    bad = [t for t, s in zip(tokens, scores, strict=True) if s is None]
    if bad:
        values = list(rubric.scale.values)
        return unparsed(f"answer {bad[0]!r} is not on the {rubric.scale.kind} scale {values}")
    if len(set(scores)) > 1:
        return unparsed(f"ambiguous answer: {len(set(scores))} different scores {sorted(set(scores))}")
    score = scores[0]
    assert score is not None
    return ParsedAnswer("ok", score, rubric.label_for(score), rationale, None, text)
