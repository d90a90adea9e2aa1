"""`workbench import otlp FILE`: OTLP/JSON as the OpenTelemetry Collector's file exporter writes it (one
``ExportTraceServiceRequest`` per line; a file holding one pretty-printed request also works).

The spans go through the same two steps as a span sent to `workbench serve`: capture/otlp.py's
``spool_records_json`` (with registered prompts looked up) and the ingester's ``parse.record_to_row``; so
a span imported from a file and the same span sent to serve are the same trace (same id, same row).
Progress is saved per batch (byte offset and line), as for openai-jsonl.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ..capture.otlp import spool_records_json
from ..capture.parse import record_to_row
from ..errors import ValidationError
from ..store import Store
from ..store import imports as import_rows
from .batch import MALFORMED, NOT_A_CALL, ImportReport, TraceBatch

__all__ = ["import_otlp"]

BATCH = 2000
_HEAD_BYTES = 4096
_WHOLE_FILE_LIMIT = 256 << 20


def _head(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.sha256(handle.read(_HEAD_BYTES)).hexdigest()


def _documents(handle: Any, offset: int, lineno: int) -> Any:
    """(document or JSONDecodeError, line number, end offset) per non-blank line."""
    handle.seek(offset)
    for raw in handle:
        lineno += 1
        offset += len(raw)
        if raw.isspace():
            continue
        try:
            yield orjson.loads(raw), lineno, offset
        except orjson.JSONDecodeError as exc:
            yield exc, lineno, offset


def import_otlp(
    store: Store,
    path: str | os.PathLike[str],
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = BATCH,
) -> ImportReport:
    """Import the LLM spans of an OTLP/JSON file as traces (idempotent, resumable)."""
    file = Path(path)
    if not file.is_file():
        raise ValidationError(f"no such file: {file}")
    source = f"otlp:{file.resolve()}"
    report = ImportReport(source=str(file), dry_run=dry_run)
    try:
        size = file.stat().st_size
        head = _head(file)
        handle = file.open("rb")
    except OSError as exc:
        raise ValidationError(f"cannot read {file}: {exc.strerror}") from None
    with store.read() as conn:
        state = import_rows.load_state(conn, source)
        prompts = import_rows.prompt_index(conn)

    def lookup(name: str, version: int) -> tuple[str, str] | None:  # as serve looks registered prompts up
        return prompts.get((name, version))

    offset, lineno = 0, 0
    if state and state.get("head") == head and 0 < int(state.get("offset", 0)) <= size:
        offset, lineno = int(state["offset"]), int(state["line"])
        report.resumed_from = f"line {lineno + 1:,}"
    sink = TraceBatch(store, source, report, dry_run=dry_run, since=since)
    with handle:
        documents = _documents(handle, offset, lineno)
        if offset == 0:
            documents = _maybe_whole(file, size, documents)
        for document, number, end in documents:
            if isinstance(document, orjson.JSONDecodeError):
                report.skip("malformed", f"line {number}: not JSON ({document})")
                continue
            try:
                batch = spool_records_json(document, lookup)
            except ValidationError as exc:
                report.skip(MALFORMED, f"line {number}: {exc}")
                continue
            for _ in range(batch.other):
                report.skip(NOT_A_CALL)
            for problem in batch.rejected:
                report.skip(MALFORMED, f"line {number}: {problem}")
            for meta, body in batch.records:
                try:
                    row = record_to_row(orjson.loads(meta), body)
                except (ValueError, TypeError, KeyError) as exc:
                    report.skip(MALFORMED, f"line {number}: {exc}")
                    continue
                sink.add(row, f"line {number}")
            if len(sink) >= batch_size:
                sink.flush({"offset": end, "line": number, "head": head})
                if progress is not None:
                    progress(end, size)
            offset, lineno = end, number
    sink.flush({"offset": offset, "line": lineno, "head": head})
    sink.clear()
    if progress is not None:
        progress(size, size)
    return report


def _maybe_whole(file: Path, size: int, documents: Iterator[Any]) -> Iterator[Any]:
    """JSON lines as they come; but when the first line is not JSON and the whole file is, that one
    (pretty-printed) request."""
    first = next(documents, None)
    if first is None:
        return
    if isinstance(first[0], orjson.JSONDecodeError) and size <= _WHOLE_FILE_LIMIT:
        try:
            whole = orjson.loads(file.read_bytes())
        except (orjson.JSONDecodeError, OSError):
            whole = None
        if whole is not None:
            yield whole, 1, size
            return
    yield first
    yield from documents
