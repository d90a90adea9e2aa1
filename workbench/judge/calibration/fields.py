"""Pull scores out of JSON rows by dotted path (``scores.human.overall``), for calibrating files.

Pure: the caller reads the file; :func:`parse_jsonl` turns its text into rows and remembers each
row's line number so every error can say ``FILE:LINE: field 'x' ...``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import ValidationError
from workbench.judge.calibration.pairwise import PREF_A, PREF_B, PREF_TIE

__all__ = ["Rows", "extract_keys", "extract_numbers", "extract_preferences", "get_path", "parse_jsonl"]

_MISSING = object()
_PREFERENCES = {"1": PREF_A, "a": PREF_A, "2": PREF_B, "b": PREF_B, "tie": PREF_TIE, "0": PREF_TIE, "1.5": PREF_TIE}


@dataclass(frozen=True)
class Rows:
    """JSON objects with the line each came from."""

    source: str
    items: tuple[Mapping[str, Any], ...]
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.items)


def parse_jsonl(text: str, source: str = "<input>") -> Rows:
    """One JSON object per non-blank line; anything else is a ValidationError naming the line."""
    items, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise ValidationError(f"{source}:{number}: expected a JSON object, got {type(item).__name__}")
        items.append(item)
        lines.append(number)
    return Rows(source, tuple(items), tuple(lines))


def get_path(row: Any, path: str) -> Any:
    """The value at a dotted path (list items by index, e.g. ``ratings.0``); a sentinel when absent."""
    value = row
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif (
            isinstance(value, Sequence)
            and not isinstance(value, str)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _as_rows(rows: Rows | Sequence[Mapping[str, Any]], source: str) -> Rows:
    if isinstance(rows, Rows):
        return rows
    return Rows(source, tuple(rows), tuple(range(1, len(rows) + 1)))


def _where(rows: Rows, index: int, path: str) -> str:
    return f"{rows.source}:{rows.lines[index]}: field '{path}'"


def extract_numbers(
    rows: Rows | Sequence[Mapping[str, Any]], path: str, *, source: str = "<rows>", allow_missing: bool = False
) -> np.ndarray:
    """Numbers at ``path`` (numeric strings and booleans accepted); NaN for missing/null when allowed."""
    table = _as_rows(rows, source)
    out = np.empty(len(table))
    for index, row in enumerate(table.items):
        value = get_path(row, path)
        if value is _MISSING or value is None:
            if allow_missing:
                out[index] = np.nan
                continue
            raise ValidationError(f"{_where(table, index, path)} is {'missing' if value is _MISSING else 'null'}")
        number = _number(value)
        if number is None:
            raise ValidationError(f"{_where(table, index, path)} is {value!r}, not a number")
        out[index] = number
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def extract_preferences(rows: Rows | Sequence[Mapping[str, Any]], path: str, *, source: str = "<rows>") -> np.ndarray:
    """Preferences at ``path`` as 1.0 (first/A), 2.0 (second/B), 1.5 (tie): from 1/2, "a"/"b", "tie", 0."""
    table = _as_rows(rows, source)
    out = np.empty(len(table))
    for index, row in enumerate(table.items):
        value = get_path(row, path)
        if value is _MISSING or value is None:
            raise ValidationError(f"{_where(table, index, path)} is {'missing' if value is _MISSING else 'null'}")
        key = (
            value.strip().casefold()
            if isinstance(value, str)
            else (None if isinstance(value, bool) else f"{float(value):g}" if isinstance(value, int | float) else None)
        )
        if key not in _PREFERENCES:
            raise ValidationError(f"{_where(table, index, path)} is {value!r}, not a preference (1/2, a/b or tie)")
        out[index] = _PREFERENCES[key]
    return out


def extract_keys(rows: Rows | Sequence[Mapping[str, Any]], path: str, *, source: str = "<rows>") -> list[Any]:
    """Group keys at ``path`` (any JSON scalar; null is its own group); missing is an error."""
    table = _as_rows(rows, source)
    keys = []
    for index, row in enumerate(table.items):
        value = get_path(row, path)
        if value is _MISSING:
            raise ValidationError(f"{_where(table, index, path)} is missing")
        if isinstance(value, dict | list):
            raise ValidationError(f"{_where(table, index, path)} is an object or list, not a group key")
        keys.append(value)
    return keys
