"""``anthropic-bedrock``: Claude fine-tuning JSONL as Amazon Bedrock takes it (Claude 3 Haiku customization,
format as in Anthropic's "Finetuning Claude 3 Haiku on Bedrock" guide).

Each line: ``{"system": "...", "messages": [{"role": "user", "content": "..."}, ..., {"role":
"assistant", "content": "..."}]}``; the documented rules, checked per example: ``system`` is an
optional string; at least two messages, alternating user/assistant, starting with user and ending
with the assistant answer to train on; content is text; no other keys. System (and developer) messages of the input
become ``system``; consecutive turns of one role are joined with a blank line (Claude's API
would merge them the same way). Tool turns and tool calls have no place in this format: such
items are skipped with the reason, as are items whose content is not text (images).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.golden.exporters.base import (
    ExportResult,
    ExportSource,
    SkippedItem,
    make_result,
    require_out,
    require_rows,
    write_jsonl,
)
from workbench.golden.items import GoldenItem, message_text

__all__ = ["bedrock_example", "export_anthropic_bedrock", "validate_bedrock_example"]

_SYSTEM_ROLES = ("system", "developer")


def _text_only(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(isinstance(p, Mapping) and p.get("type") == "text" for p in content)


def bedrock_example(item: GoldenItem) -> tuple[dict[str, Any] | None, str | None]:
    """The line for one item, or None and why it cannot be one."""
    if not item.expected_output or not item.expected_output.strip():
        return None, "no expected text output" if not item.expected_tool_calls else "expected answer is a tool call"
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for message in item.input:
        role = message.get("role")
        if role == "tool" or message.get("tool_calls") or message.get("function_call"):
            return None, "tool turns are not supported by Bedrock fine-tuning"
        if not _text_only(message):
            return None, "non-text content (images, files) is not supported by Bedrock fine-tuning"
        text = message_text(message)
        if role in _SYSTEM_ROLES:
            if turns:
                return None, "a system message after the conversation started"
            system.append(text)
            continue
        if role not in ("user", "assistant"):
            return None, f"role {role!r} has no Bedrock equivalent"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": role, "content": text})
    if not turns or turns[0]["role"] != "user":
        return None, "the conversation must start with a user message"
    if turns[-1]["role"] != "user":
        return None, "input must end with a user message"
    example: dict[str, Any] = {}
    if any(s.strip() for s in system):
        example["system"] = "\n\n".join(s for s in system if s.strip())
    example["messages"] = [*turns, {"role": "assistant", "content": item.expected_output}]
    return example, None


def validate_bedrock_example(example: Any) -> list[str]:
    """Errors in one line against the documented format (empty = valid)."""
    if not isinstance(example, Mapping):
        return ["not a JSON object"]
    errors = [f"unknown key {k!r}" for k in example if k not in ("system", "messages")]
    if "system" in example and not isinstance(example["system"], str):
        errors.append("system must be a string")
    messages = example.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        return [*errors, "messages must be a list of at least a user and an assistant message"]
    for n, message in enumerate(messages):
        expected = "user" if n % 2 == 0 else "assistant"
        if not isinstance(message, Mapping) or set(message) != {"role", "content"}:
            errors.append(f"messages[{n}]: needs exactly 'role' and 'content'")
        elif message["role"] != expected:
            errors.append(f"messages[{n}]: role must be {expected} (roles alternate, starting with user)")
        elif not isinstance(message["content"], str) or not message["content"].strip():
            errors.append(f"messages[{n}]: content must be non-empty text")
    if messages[-1].get("role") != "assistant":
        errors.append("the last message must be the assistant's")
    return errors


def export_anthropic_bedrock(source: ExportSource, out: str | Path | None, /) -> ExportResult:
    """Claude (Bedrock) fine-tuning JSONL; items that cannot be expressed are skipped with the reason."""
    path = require_out("anthropic-bedrock", out)
    rows: list[dict[str, Any]] = []
    written: list[GoldenItem] = []
    skipped: list[SkippedItem] = []
    for item in source.items:
        example, why = bedrock_example(item)
        if example is None:
            skipped.append(SkippedItem(item.id, why or "not exportable"))
            continue
        if errors := validate_bedrock_example(example):
            skipped.append(SkippedItem(item.id, f"invalid: {errors[0]}"))
            continue
        rows.append(example)
        written.append(item)
    require_rows("anthropic-bedrock", source, rows, skipped)
    sha = write_jsonl(path, rows)
    return make_result("anthropic-bedrock", source, path, written=written, skipped=skipped, sha256=sha)
