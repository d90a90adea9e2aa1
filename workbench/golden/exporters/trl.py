"""TRL's conversational dataset formats: ``trl-sft`` (SFTTrainer) and ``trl-kto`` (KTOTrainer).

- ``trl-sft``: ``{"messages": [...input..., {"role": "assistant", "content": expected}]}`` (plus
  ``"tools"`` when the item offered tools), TRL's "conversational language modeling" type.
- ``trl-kto``: TRL's "unpaired preference" type, ``{"prompt": [...input...], "completion":
  [{"role": "assistant", ...}], "label": true|false}``. A golden item gives up to two rows: the
  wanted answer (``expected_output``, label true) and the answer that drew the thumbs-down or
  correction (``original_output``, label false). KTO learns from the two kinds apart, so they need
  not come in pairs; TRL's ``unpair_preference_dataset`` of the ``trl-dpo`` export gives the same rows.

Messages are what chat templates read: OpenAI-only keys (``weight``, ``refusal``...) are dropped,
a content given as text parts becomes one string, and tool-call arguments become objects (chat
templates render ``arguments`` with ``tojson``; OpenAI keeps them as a JSON string).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from workbench.golden.exporters.base import (
    ExportResult,
    ExportSource,
    SkippedItem,
    make_result,
    require_out,
    require_rows,
    write_jsonl,
)
from workbench.golden.exporters.openai_chat import final_message, sanitize_messages, validate_chat_example
from workbench.golden.items import GoldenItem, message_text

__all__ = ["export_trl_kto", "export_trl_sft", "template_messages"]


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _template_message(message: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in message.items() if k != "weight"}
    content = out.get("content")
    if isinstance(content, list) and all(isinstance(p, Mapping) and p.get("type") == "text" for p in content):
        out["content"] = message_text(out)
    if out.get("tool_calls"):
        out["tool_calls"] = [
            {**call, "function": {**call["function"], "arguments": _arguments(call["function"].get("arguments"))}}
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping)
            else call
            for call in out["tool_calls"]
        ]
    return out


def template_messages(messages: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages as Hugging Face chat templates (and so TRL) read them."""
    return [_template_message(m) for m in messages]


def _prompt(item: GoldenItem, skipped: list[SkippedItem], dropped_keys: set[str]) -> list[dict[str, Any]] | None:
    prompt, dropped = sanitize_messages(item.input)
    dropped_keys |= dropped
    for message in prompt:  # OpenAI's newer name for it; chat templates know only "system"
        if message.get("role") == "developer":
            message["role"] = "system"
    if prompt[-1].get("role") not in ("user", "tool"):
        skipped.append(SkippedItem(item.id, "input must end with a user or tool message"))
        return None
    return prompt


def _warn_dropped(dropped_keys: set[str]) -> list[str]:
    return (
        [f"dropped message keys chat templates do not read: {', '.join(sorted(dropped_keys))}"] if dropped_keys else []
    )


def export_trl_sft(source: ExportSource, out: str | Path | None, /) -> ExportResult:
    """TRL conversational SFT JSONL; items without an expected answer or with invalid messages are skipped."""
    path = require_out("trl-sft", out)
    rows: list[dict[str, Any]] = []
    written: list[GoldenItem] = []
    skipped: list[SkippedItem] = []
    dropped_keys: set[str] = set()
    for item in source.items:
        if not item.has_expected:
            skipped.append(SkippedItem(item.id, "no expected output"))
            continue
        prompt = _prompt(item, skipped, dropped_keys)
        if prompt is None:
            continue
        messages = [*prompt, final_message(item)]
        if errors := validate_chat_example({"messages": messages}):
            skipped.append(SkippedItem(item.id, f"invalid: {errors[0]}"))
            continue
        row: dict[str, Any] = {"messages": template_messages(messages)}
        if item.tools:
            row["tools"] = item.tools
        rows.append(row)
        written.append(item)
    require_rows("trl-sft", source, rows, skipped)
    sha = write_jsonl(path, _same_columns(rows))
    return make_result(
        "trl-sft", source, path, written=written, skipped=skipped, sha256=sha, warnings=_warn_dropped(dropped_keys)
    )


def _same_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row with the same keys: ``datasets`` infers one schema from the file (a ``tools`` key on some
    rows only would be null on the rest anyway, and an explicit null keeps the column's type)."""
    if any("tools" in row for row in rows):
        return [{**row, "tools": row.get("tools")} for row in rows]
    return rows


def export_trl_kto(source: ExportSource, out: str | Path | None, /) -> ExportResult:
    """TRL unpaired-preference (KTO) JSONL: desirable = expected answer, undesirable = the original answer."""
    path = require_out("trl-kto", out)
    rows: list[dict[str, Any]] = []
    written: list[GoldenItem] = []
    skipped: list[SkippedItem] = []
    dropped_keys: set[str] = set()
    counts = {"desirable": 0, "undesirable": 0}
    for item in source.items:
        original = (item.original_output or "").strip()
        same = original == (item.expected_output or "").strip() and not item.expected_tool_calls
        if not item.has_expected and not original:
            skipped.append(SkippedItem(item.id, "neither an expected nor an original answer"))
            continue
        prompt = _prompt(item, skipped, dropped_keys)
        if prompt is None:
            continue
        made: list[dict[str, Any]] = []
        if item.has_expected:
            chosen = final_message(item)
            if errors := validate_chat_example({"messages": [*prompt, chosen]}):
                skipped.append(SkippedItem(item.id, f"invalid: {errors[0]}"))
                continue
            made.append({"completion": [chosen], "label": True})
        if original and not same:
            made.append({"completion": [{"role": "assistant", "content": item.original_output}], "label": False})
        messages = template_messages(prompt)
        for row in made:
            counts["desirable" if row["label"] else "undesirable"] += 1
            rows.append({"prompt": messages, "completion": template_messages(row["completion"]), "label": row["label"]})
            written.append(item)  # one entry per row: the result's item_ids line up with the file's rows
    require_rows("trl-kto", source, rows, skipped)
    warnings = _warn_dropped(dropped_keys)
    if not counts["desirable"] or not counts["undesirable"]:
        missing = "desirable (label true)" if not counts["desirable"] else "undesirable (label false)"
        warnings.append(f"no {missing} examples: KTO learns from both kinds")
    sha = write_jsonl(path, rows)
    return make_result(
        "trl-kto", source, path, written=written, skipped=skipped, sha256=sha, warnings=warnings, stats=counts
    )
