"""A golden item: one input, the answer we want, the answer that drew complaints, and where it came from.

The item id is a content hash of the *input* (messages plus any tool definitions), so the same
question keeps the same id across versions: editing the expected answer shows up as "changed"
in a diff, a new question as "added". The serialized line (keys sorted, compact, UTF-8) is the
unit that manifests hash, so one item is one line in ``vN.jsonl`` and git diffs stay readable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.errors import ValidationError
from workbench.models import Candidate

__all__ = [
    "GoldenItem",
    "Provenance",
    "canonical_line",
    "coerce_items",
    "from_candidate",
    "item_id_for",
    "line_sha256",
    "message_text",
]

ID_LENGTH = 16  # hex chars of sha256: 64 bits, collision-free far beyond any golden set size


class Provenance(BaseModel):
    """Where an item came from, so an exported row can be traced back to traces and feedback.

    ``trace_ids[0]`` is the representative trace (the one shown in triage); the rest are the
    cluster members that asked the same thing.
    """

    model_config = ConfigDict(extra="forbid")

    candidate_id: str | None = None
    trace_ids: list[str] = Field(default_factory=list)
    feedback_ids: list[str] = Field(default_factory=list)
    decision_ids: list[str] = Field(default_factory=list)
    prompt: str | None = None  # "name@version"
    model: str | None = None
    rubric_ids: list[str] = Field(default_factory=list)

    @property
    def source_trace_id(self) -> str | None:
        return self.trace_ids[0] if self.trace_ids else None


def item_id_for(input_messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None = None) -> str:
    """The stable id of an item: a hash of what was asked (messages and offered tools)."""
    payload: dict[str, Any] = {"input": list(input_messages)}
    if tools:
        payload["tools"] = list(tools)
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:ID_LENGTH]


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one chat message, whether ``content`` is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping) and "text" in part)
    return ""


class GoldenItem(BaseModel):
    """One golden example. ``id`` may be omitted on input; it is always derived from the input."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    input: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    expected_output: str | None = None
    expected_tool_calls: list[dict[str, Any]] | None = None
    original_output: str | None = None
    labels: list[str] = Field(default_factory=list)
    notes: str | None = None
    provenance: Provenance = Field(default_factory=Provenance)

    @model_validator(mode="after")
    def _check(self) -> GoldenItem:
        if not self.input:
            raise ValueError("input: at least one message is required")
        for position, message in enumerate(self.input):
            if not isinstance(message.get("role"), str) or not message["role"]:
                raise ValueError(f"input[{position}]: message has no 'role'")
        expected = item_id_for(self.input, self.tools)
        if not self.id:
            self.id = expected
        elif self.id != expected:
            raise ValueError(f"id {self.id!r} does not match the hash of its input ({expected})")
        return self

    @property
    def has_expected(self) -> bool:
        """True if there is a wanted answer (text or tool calls) to train or compare against."""
        return bool(self.expected_output) or bool(self.expected_tool_calls)

    @property
    def prompt_text(self) -> str:
        """The non-system text of the input: what near-duplicate checks compare.

        System prompts are left out because every item of one prompt shares them; they would make
        all items look alike.
        """
        return "\n".join(message_text(m) for m in self.input if m.get("role") not in ("system", "developer"))


def canonical_line(item: GoldenItem) -> bytes:
    """The item as one compact JSON line (keys sorted, UTF-8, no trailing newline)."""
    return orjson.dumps(item.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def line_sha256(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _first_error(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def coerce_items(items: Iterable[GoldenItem | Mapping[str, Any]], *, what: str = "item") -> list[GoldenItem]:
    """Turn dicts (or items) into ``GoldenItem``s; a bad one raises naming its position and field."""
    result: list[GoldenItem] = []
    for position, raw in enumerate(items):
        if isinstance(raw, GoldenItem):
            result.append(raw)
            continue
        if not isinstance(raw, Mapping):
            raise ValidationError(f"{what} {position}: expected a mapping, got {type(raw).__name__}")
        try:
            result.append(GoldenItem.model_validate(dict(raw)))
        except pydantic.ValidationError as exc:
            raise ValidationError(f"{what} {position}: {_first_error(exc)}") from None
    return result


def from_candidate(
    candidate: Candidate,
    *,
    rubric_ids: Sequence[str] = (),
    decision_ids: Sequence[str] = (),
    tools: list[dict[str, Any]] | None = None,
    expected_tool_calls: list[dict[str, Any]] | None = None,
) -> GoldenItem:
    """An item from an accepted candidate: its (redacted) input, corrected answer and provenance."""
    trace_ids = [candidate.representative_trace_id]
    trace_ids += [t for t in candidate.member_trace_ids if t != candidate.representative_trace_id]
    prompt = (
        f"{candidate.prompt_name}@{candidate.prompt_version}"
        if candidate.prompt_name and candidate.prompt_version is not None
        else candidate.prompt_name
    )
    try:
        return GoldenItem(
            input=candidate.input,
            tools=tools,
            expected_output=candidate.expected_output,
            expected_tool_calls=expected_tool_calls,
            original_output=candidate.output_text,
            labels=list(candidate.labels),
            notes=candidate.notes,
            provenance=Provenance(
                candidate_id=candidate.id,
                trace_ids=trace_ids,
                feedback_ids=list(candidate.feedback_ids),
                decision_ids=list(decision_ids),
                prompt=prompt,
                model=candidate.model_resolved,
                rubric_ids=list(rubric_ids),
            ),
        )
    except pydantic.ValidationError as exc:
        raise ValidationError(f"candidate {candidate.id}: {_first_error(exc)}") from None
