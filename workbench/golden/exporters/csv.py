"""``csv``: one row per item for spreadsheets (stdlib ``csv``), readable and still lossless.

``conversation`` renders the input as ``role: text`` lines for people; ``input_json`` and the other
``*_json`` columns keep the exact data, so ``read_csv`` + ``item_from_row`` rebuild each item.
Cells come from production users, so anything a spreadsheet would run as a formula (leading
``= + - @``, tab or CR) is prefixed with ``'`` (OWASP's CSV-injection advice); a leading ``'`` is
doubled so ``read_csv`` can undo the escaping exactly. UTF-8 with a BOM, so Excel detects it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from workbench.golden.atomic import atomic_write_bytes
from workbench.golden.exporters.base import ExportResult, ExportSource, make_result, require_out
from workbench.golden.items import GoldenItem, Provenance, message_text

__all__ = ["COLUMNS", "export_csv", "item_from_row", "read_csv"]

COLUMNS = [
    "id",
    "conversation",
    "expected_output",
    "original_output",
    "labels",
    "notes",
    "candidate_id",
    "trace_ids",
    "feedback_ids",
    "decision_ids",
    "prompt",
    "model",
    "rubric_ids",
    "input_json",
    "tools_json",
    "expected_tool_calls_json",
]
_LIST_FIELDS = ("trace_ids", "feedback_ids", "decision_ids", "rubric_ids")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def _escape(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _unescape(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def _json(value: Any) -> str:
    return "" if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _row(item: GoldenItem) -> dict[str, str]:
    p = item.provenance
    row = {
        "id": item.id,
        "conversation": "\n".join(f"{m['role']}: {message_text(m)}" for m in item.input),
        "expected_output": item.expected_output or "",
        "original_output": item.original_output or "",
        "labels": _json(item.labels),
        "notes": item.notes or "",
        "candidate_id": p.candidate_id or "",
        **{name: _json(getattr(p, name)) for name in _LIST_FIELDS},
        "prompt": p.prompt or "",
        "model": p.model or "",
        "input_json": _json(item.input),
        "tools_json": _json(item.tools),
        "expected_tool_calls_json": _json(item.expected_tool_calls),
    }
    return {key: _escape(value) for key, value in row.items()}


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of an exported file with the formula escaping undone."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return [{k: _unescape(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def item_from_row(row: Mapping[str, str]) -> GoldenItem:
    """Rebuild the golden item from a ``read_csv`` row (empty cell = None)."""

    def text(key: str) -> str | None:
        return row[key] or None

    def loads(key: str) -> Any:
        return orjson.loads(row[key]) if row[key] else None

    return GoldenItem(
        id=row["id"],
        input=loads("input_json"),
        tools=loads("tools_json"),
        expected_output=text("expected_output"),
        expected_tool_calls=loads("expected_tool_calls_json"),
        original_output=text("original_output"),
        labels=loads("labels") or [],
        notes=text("notes"),
        provenance=Provenance(
            candidate_id=text("candidate_id"),
            prompt=text("prompt"),
            model=text("model"),
            **{name: loads(name) or [] for name in _LIST_FIELDS},
        ),
    )


def export_csv(source: ExportSource, out: str | Path | None, /, *, bom: bool = True) -> ExportResult:
    """Write every item as one CSV row (empty strings and None both become empty cells)."""
    path = require_out("csv", out)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for item in source.items:
        writer.writerow(_row(item))
    data = buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")
    sha = atomic_write_bytes(path, data)
    return make_result("csv", source, path, written=list(source.items), skipped=[], sha256=sha)
