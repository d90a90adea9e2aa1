"""What every exporter shares: the input it accepts, the result it returns, the atomic JSONL write.

Exporters take a loaded ``GoldenVersion`` (or plain items, for ad-hoc use), build every output
row in memory first, and only then write: a set where nothing is exportable fails with
``GoldenSetError`` before any file exists, and the write itself is temp-file-then-rename.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from workbench.errors import GoldenSetError, ValidationError
from workbench.golden.atomic import atomic_write_bytes
from workbench.golden.items import GoldenItem, coerce_items
from workbench.golden.manifest import VersionInfo
from workbench.golden.sets import GoldenVersion
from workbench.ids import new_id
from workbench.models import Export

__all__ = [
    "ExportResult",
    "ExportSource",
    "Exporter",
    "SkippedItem",
    "as_source",
    "make_result",
    "require_out",
    "require_rows",
    "write_jsonl",
]


@dataclass(frozen=True)
class SkippedItem:
    id: str
    reason: str


@dataclass(frozen=True)
class ExportSource:
    """Items to export plus, when they come from a stored version, which one."""

    items: list[GoldenItem]
    name: str | None = None
    version: int | None = None
    info: VersionInfo | None = None

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}" if self.name and self.version else "items"

    def manifest(self) -> dict[str, Any]:
        """The version's manifest entry (plus the set name) as plain JSON data, or {} if ad hoc."""
        if self.info is None:
            return {}
        return {"name": self.name, **self.info.model_dump(mode="json")}


@dataclass(frozen=True)
class ExportResult:
    format: str
    path: str
    item_count: int
    skipped_count: int
    sha256: str  # of the written file (or directory tree, or payload sent)
    warnings: list[str] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    golden_set: str | None = None
    version: int | None = None
    source_sha256: str | None = None  # the golden vN.jsonl that fed this export
    feedback_ids: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # format-specific numbers (e.g. token counts)
    item_ids: list[str] = field(default_factory=list)  # golden item id of each written row, in order

    def to_record(self, export_id: str | None = None) -> Export:
        """The row for the store's append-only export log (needs a stored golden version)."""
        if self.golden_set is None or self.version is None or self.source_sha256 is None:
            raise GoldenSetError("only exports of a stored golden-set version can be logged")
        return Export(
            id=export_id or new_id(),
            golden_set=self.golden_set,
            version=self.version,
            file_hash=self.source_sha256,
            format=self.format,
            path=self.path,
            item_count=self.item_count,
            feedback_ids=self.feedback_ids,
        )


class Exporter(Protocol):
    def __call__(self, source: ExportSource, out: str | Path | None, /, **options: Any) -> ExportResult: ...


def as_source(source: GoldenVersion | ExportSource | Iterable[GoldenItem | Mapping[str, Any]]) -> ExportSource:
    """Normalize what callers hand in; an empty set is a ``GoldenSetError``."""
    if isinstance(source, ExportSource):
        result = source
    elif isinstance(source, GoldenVersion):
        result = ExportSource(list(source.items), source.name, source.version, source.info)
    else:
        result = ExportSource(coerce_items(source))
    if not result.items:
        raise GoldenSetError(f"{result.label}: the golden set is empty; nothing to export")
    return result


def make_result(
    fmt: str,
    source: ExportSource,
    path: str | Path,
    *,
    written: list[GoldenItem],
    skipped: list[SkippedItem],
    sha256: str,
    warnings: list[str] | None = None,
    stats: dict[str, Any] | None = None,
) -> ExportResult:
    warnings = list(warnings or [])
    if skipped:
        warnings.insert(0, f"{len(skipped)} of {len(source.items)} items skipped")
    feedback = sorted({f for item in written for f in item.provenance.feedback_ids})
    return ExportResult(
        format=fmt,
        path=str(path),
        item_count=len(written),
        skipped_count=len(skipped),
        sha256=sha256,
        warnings=warnings,
        skipped=skipped,
        golden_set=source.name,
        version=source.version,
        source_sha256=source.info.file_sha256 if source.info else None,
        feedback_ids=feedback,
        stats=dict(stats or {}),
        item_ids=[item.id for item in written],
    )


def require_rows(fmt: str, source: ExportSource, rows: list[Any], skipped: list[SkippedItem]) -> None:
    """Fail before writing anything when every item was skipped."""
    if not rows:
        reasons = sorted({s.reason for s in skipped})
        raise GoldenSetError(
            f"{source.label}: no items exportable as {fmt} ({len(skipped)} skipped: {'; '.join(reasons[:3])})"
        )


def require_out(fmt: str, out: str | Path | None) -> Path:
    if out is None or str(out) == "":
        raise ValidationError(f"{fmt} export needs an output path")
    return Path(out)


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> str:
    """One JSON object per line, UTF-8, trailing newline; atomic; returns the file's sha256."""
    data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    return atomic_write_bytes(path, data)
