"""Preference pairs mined from production feedback: ``openai-preference`` and ``trl-dpo``.

chosen = the accepted, edited or user-corrected answer (``expected_output``); rejected = the
answer that drew the negative feedback (``original_output``). Items missing either side, or
whose two sides are the same text, are skipped and counted in the result.

- ``openai-preference``: OpenAI preference (DPO) fine-tuning JSONL,
  ``{"input": {"messages": [...]}, "preferred_output": [assistant], "non_preferred_output": [assistant]}``.
- ``trl-dpo``: TRL's conversational preference format, ``{"prompt": [...], "chosen": [...],
  "rejected": [...]}`` with message lists, loadable by ``datasets`` and ``DPOTrainer``.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from workbench.golden.exporters.openai_chat import final_message, sanitize_messages, validate_chat_example
from workbench.golden.items import GoldenItem

__all__ = ["PreferencePair", "export_openai_preference", "export_trl_dpo", "preference_pairs"]


@dataclass(frozen=True)
class PreferencePair:
    item: GoldenItem
    prompt: list[dict[str, Any]]
    chosen: dict[str, Any]
    rejected: dict[str, Any]


def preference_pairs(source: ExportSource) -> tuple[list[PreferencePair], list[SkippedItem], list[str]]:
    """The exportable pairs, the skipped items with reasons, and warnings."""
    pairs: list[PreferencePair] = []
    skipped: list[SkippedItem] = []
    dropped_keys: set[str] = set()
    for item in source.items:
        if not item.has_expected:
            skipped.append(SkippedItem(item.id, "no chosen answer (expected output)"))
            continue
        if not item.original_output or not item.original_output.strip():
            skipped.append(SkippedItem(item.id, "no rejected answer (original output)"))
            continue
        same_text = (item.expected_output or "").strip() == item.original_output.strip()
        if same_text and not item.expected_tool_calls:
            skipped.append(SkippedItem(item.id, "chosen and rejected are the same text"))
            continue
        prompt, dropped = sanitize_messages(item.input)
        dropped_keys |= dropped
        if prompt[-1].get("role") not in ("user", "tool"):
            skipped.append(SkippedItem(item.id, "input must end with a user or tool message"))
            continue
        chosen = final_message(item)
        if errors := validate_chat_example({"messages": [*prompt, chosen]}):
            skipped.append(SkippedItem(item.id, f"invalid: {errors[0]}"))
            continue
        pairs.append(PreferencePair(item, prompt, chosen, {"role": "assistant", "content": item.original_output}))
    warnings = []
    if dropped_keys:
        warnings.append(f"dropped message keys not valid in chat messages: {', '.join(sorted(dropped_keys))}")
    return pairs, skipped, warnings


def _export(fmt: str, source: ExportSource, out: str | Path | None, rows_of: Any) -> ExportResult:
    path = require_out(fmt, out)
    pairs, skipped, warnings = preference_pairs(source)
    rows = [rows_of(pair) for pair in pairs]
    require_rows(fmt, source, rows, skipped)
    sha = write_jsonl(path, rows)
    return make_result(
        fmt, source, path, written=[p.item for p in pairs], skipped=skipped, sha256=sha, warnings=warnings
    )


def _openai_row(pair: PreferencePair) -> dict[str, Any]:
    row_input: dict[str, Any] = {"messages": pair.prompt}
    if pair.item.tools:
        row_input["tools"] = pair.item.tools
    return {"input": row_input, "preferred_output": [pair.chosen], "non_preferred_output": [pair.rejected]}


def _trl_row(pair: PreferencePair) -> dict[str, Any]:
    return {"prompt": pair.prompt, "chosen": [pair.chosen], "rejected": [pair.rejected]}


def export_openai_preference(source: ExportSource, out: str | Path | None, /) -> ExportResult:
    """OpenAI preference fine-tuning JSONL."""
    return _export("openai-preference", source, out, _openai_row)


def export_trl_dpo(source: ExportSource, out: str | Path | None, /) -> ExportResult:
    """TRL conversational prompt/chosen/rejected JSONL."""
    return _export("trl-dpo", source, out, _trl_row)
