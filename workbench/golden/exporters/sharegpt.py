"""Plain text conversations for open-model trainers: ``together-chat`` and ``sharegpt``.

- ``together-chat``: Together AI's conversational fine-tuning format, ``{"messages": [{"role":
  "system"|"user"|"assistant", "content": "..."}]}``, ending with the answer to train on. Axolotl's
  ``chat_template`` dataset type reads the same lines (``field_messages: messages``).
- ``sharegpt``: the ShareGPT layout Axolotl (``type: sharegpt``, or ``chat_template`` with
  ``field_messages: conversations``, ``message_property_mappings: {role: from, content: value}``),
  LLaMA-Factory and FastChat read: ``{"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}]}``.

Both carry text turns only: items with tool turns, tool calls or non-text content are skipped
with the reason (their tool layouts differ between trainers); a content given as text parts
becomes one string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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

__all__ = ["SHAREGPT_ROLES", "export_sharegpt", "export_together_chat", "text_conversation"]

SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def text_conversation(item: GoldenItem) -> tuple[list[dict[str, str]] | None, str | None]:
    """The item as system/user/assistant text turns ending with the expected answer, or None and why."""
    if not item.expected_output or not item.expected_output.strip():
        return None, "expected answer is a tool call" if item.expected_tool_calls else "no expected text output"
    turns: list[dict[str, str]] = []
    for message in item.input:
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role == "tool" or message.get("tool_calls") or message.get("function_call"):
            return None, "tool turns are not carried by this format"
        content = message.get("content")
        parts_ok = isinstance(content, list) and all(
            isinstance(p, Mapping) and p.get("type") == "text" for p in content
        )
        if not (isinstance(content, str) or parts_ok):
            return None, "non-text content (images, files) is not carried by this format"
        if role not in SHAREGPT_ROLES:
            return None, f"role {role!r} has no equivalent in this format"
        if role == "system" and any(t["role"] != "system" for t in turns):
            return None, "a system message after the conversation started"
        turns.append({"role": str(role), "content": message_text(message)})
    if not turns or turns[-1]["role"] != "user":
        return None, "input must end with a user message"
    turns.append({"role": "assistant", "content": item.expected_output})
    return turns, None


def _export(
    fmt: str, source: ExportSource, out: str | Path | None, row_of: Callable[[list[dict[str, str]]], Any]
) -> ExportResult:
    path = require_out(fmt, out)
    rows: list[dict[str, Any]] = []
    written: list[GoldenItem] = []
    skipped: list[SkippedItem] = []
    for item in source.items:
        turns, why = text_conversation(item)
        if turns is None:
            skipped.append(SkippedItem(item.id, why or "not exportable"))
            continue
        rows.append(row_of(turns))
        written.append(item)
    require_rows(fmt, source, rows, skipped)
    sha = write_jsonl(path, rows)
    return make_result(fmt, source, path, written=written, skipped=skipped, sha256=sha)


def export_together_chat(source: ExportSource, out: str | Path | None, /) -> ExportResult:
    """Together AI conversational JSONL (role/content messages)."""
    return _export("together-chat", source, out, lambda turns: {"messages": turns})


def export_sharegpt(source: ExportSource, out: str | Path | None, /) -> ExportResult:
    """ShareGPT JSONL (from/value turns), as Axolotl, LLaMA-Factory and FastChat read it."""
    return _export(
        "sharegpt",
        source,
        out,
        lambda turns: {"conversations": [{"from": SHAREGPT_ROLES[t["role"]], "value": t["content"]} for t in turns]},
    )
