"""`workbench import openai-jsonl FILE` and `workbench export-traces`: the JSONL trace format
(trace_format.py) from a file into the store, and from the store into a file.

Import reads the file once, in batches of checked rows (see batch.TraceBatch): a malformed line is
reported with its line number and skipped, rows already stored are counted and skipped, and after each
batch the byte offset and line number are saved with the rows, so an interrupted import resumes at the
first line not yet committed (when the file's first bytes are unchanged).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from ..errors import ExportError, ValidationError
from ..store import Store
from ..store import imports as import_rows
from .batch import ImportReport, TraceBatch
from .trace_format import LineError, line_to_row, row_to_line

__all__ = ["export_traces", "import_jsonl"]

BATCH = 2000
_HEAD_BYTES = 4096
Progress = Callable[[int, int], None]  # (done, total) in bytes (import) or traces (export)


def _head(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.sha256(handle.read(_HEAD_BYTES)).hexdigest()


def import_jsonl(
    store: Store,
    path: str | os.PathLike[str],
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    batch_size: int = BATCH,
    now: datetime | None = None,
) -> ImportReport:
    """Import one JSONL file of calls; see the module and trace_format docstrings for the guarantees."""
    file = Path(path)
    if not file.is_file():
        raise ValidationError(f"no such file: {file}")
    source = f"openai-jsonl:{file.resolve()}"
    report = ImportReport(source=str(file), dry_run=dry_run)
    try:
        size = file.stat().st_size
        head = _head(file)
    except OSError as exc:
        raise ValidationError(f"cannot read {file}: {exc.strerror}") from None
    with store.read() as conn:
        state = import_rows.load_state(conn, source)
        prompts = import_rows.prompt_index(conn)
    offset, lineno = 0, 0
    if state and state.get("head") == head and 0 < int(state.get("offset", 0)) <= size:
        offset, lineno = int(state["offset"]), int(state["line"])
        report.resumed_from = f"line {lineno + 1:,}"
    sink = TraceBatch(store, source, report, dry_run=dry_run, since=since)
    stamp = now or datetime.now(UTC)
    loads = orjson.loads
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise ValidationError(f"cannot read {file}: {exc.strerror}") from None
    with handle:
        handle.seek(offset)
        for raw in handle:
            lineno += 1
            offset += len(raw)
            if raw.isspace():
                continue
            try:
                row = line_to_row(loads(raw), raw, prompts=prompts, now=stamp)
            except orjson.JSONDecodeError as exc:
                report.skip("malformed", f"line {lineno}: not JSON ({exc})")
                continue
            except LineError as exc:
                report.skip("malformed", f"line {lineno}: {exc}")
                continue
            sink.add(row, f"line {lineno}")
            if len(sink) >= batch_size:
                sink.flush({"offset": offset, "line": lineno, "head": head})
                if progress is not None:
                    progress(offset, size)
    sink.flush({"offset": offset, "line": lineno, "head": head})
    sink.clear()
    if progress is not None:
        progress(size, size)
    return report


def export_traces(
    store: Store,
    out: str | os.PathLike[str] | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
    page: int = BATCH,
) -> int:
    """Write every trace (in time order) as one line of the JSONL trace format; returns how many.

    ``out`` None or "-" writes to stdout; a file is written next to its destination and renamed into
    place (owner-only, 0600: traces hold users' text), so a failed export leaves no partial file.
    """
    with store.read() as conn:
        from ..store import traces as trace_rows

        total = trace_rows.count_traces(conn)
    if out is None or str(out) == "-":
        return _write(store, sys.stdout.buffer, since, until, progress, page, total)
    target = Path(out)
    if target.is_dir():
        raise ValidationError(f"--out {target} is a directory; give a file name")
    tmp_name = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            count = _write(store, handle, since, until, progress, page, total)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
    return count


def _write(
    store: Store,
    handle: IO[bytes],
    since: datetime | None,
    until: datetime | None,
    progress: Progress | None,
    page: int,
    total: int,
) -> int:
    dumps = orjson.dumps
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
    count = 0
    after: str | None = None
    while True:
        with store.read() as conn:
            rows = import_rows.trace_rows_after(conn, after, page, since=since, until=until)
        if not rows:
            break
        handle.write(b"".join(dumps(row_to_line(row), option=option) for row in rows))
        count += len(rows)
        after = rows[-1]["id"]
        if progress is not None:
            progress(count, total)
    return count
