"""`workbench import openai-jsonl FILE` and `workbench export-traces`: the JSONL trace format
(trace_format.py) from a file into the store, and from the store into a file.

Import reads the file once, in batches of checked rows (see batch.TraceBatch): a malformed line is
reported with its line number and skipped, rows already stored are counted and skipped, and after each
batch the byte offset and line number are saved with the rows, so an interrupted import resumes at the
first line not yet committed (when the file's first bytes are unchanged).
"""

from __future__ import annotations

import gc
import hashlib
import os
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from ..errors import ExportError, ValidationError
from ..store import Store
from ..store import imports as import_rows
from ..store import traces as trace_rows
from .batch import BEFORE_SINCE, MALFORMED, REFUSED, ImportReport, TraceBatch
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
    workers: int = 0,
) -> ImportReport:
    """Import one JSONL file of calls; see the module and trace_format docstrings for the guarantees.

    ``workers``: forked processes that parse while this one inserts (default none); the result is the
    same either way. Parsing is ~55% of the CPU and inserting ~45%, so on idle cores a worker can overlap
    them; but shipping rows between processes costs CPU (measured ~15k traces per CPU-second in all,
    against ~24k in one process), so on a busy machine one process is faster, and it is the default.
    """
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
    sink = TraceBatch(store, source, report, dry_run=dry_run)
    context = (prompts, now or datetime.now(UTC), since, store.dialect)
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise ValidationError(f"cannot read {file}: {exc.strerror}") from None
    with handle, _gc_paused():
        chunks = _chunks(handle, offset, lineno, batch_size)
        for outcomes, end, last in _parsed(chunks, context, workers):
            for outcome in outcomes:
                if outcome[0] == _ROW:
                    sink.add_encoded(outcome[1], outcome[2], outcome[3])
                else:
                    report.skip(outcome[1], outcome[2])
            offset, lineno = end, last
            sink.flush({"offset": offset, "line": lineno, "head": head})
            if progress is not None:
                progress(offset, size)
    sink.flush({"offset": offset, "line": lineno, "head": head})
    sink.clear()
    if progress is not None:
        progress(size, size)
    return report


_ROW, _SKIP = 0, 1
Context = tuple[Any, datetime, datetime | None, str]  # prompts, now, since, dialect
Chunk = tuple[list[bytes], int, int, int]  # lines, number of the line before them, end offset, last line


def _chunks(handle: IO[bytes], offset: int, lineno: int, size: int) -> Iterator[Chunk]:
    handle.seek(offset)
    lines: list[bytes] = []
    before = lineno
    for raw in handle:
        lines.append(raw)
        offset += len(raw)
        if len(lines) >= size:
            yield lines, before, offset, before + len(lines)
            before += len(lines)
            lines = []
    if lines:
        yield lines, before, offset, before + len(lines)


def parse_lines(lines: list[bytes], before: int, context: Context) -> list[tuple[Any, ...]]:
    """Each line as (ROW, trace id, encoded row, label) or (SKIP, reason, problem): the CPU-bound part of
    an import, a pure function so that worker processes can run it."""
    prompts, now, since, dialect = context
    loads = orjson.loads
    encode = trace_rows.encode_trace_row
    out: list[tuple[Any, ...]] = []
    for number, raw in enumerate(lines, start=before + 1):
        if raw.isspace():
            continue
        try:
            row = line_to_row(loads(raw), raw, prompts=prompts, now=now)
        except orjson.JSONDecodeError as exc:
            out.append((_SKIP, MALFORMED, f"line {number}: not JSON ({exc})"))
            continue
        except LineError as exc:
            out.append((_SKIP, MALFORMED, f"line {number}: {exc}"))
            continue
        if since is not None and row["created_at"] < since:
            out.append((_SKIP, BEFORE_SINCE, None))
            continue
        try:
            out.append((_ROW, row["id"], encode(row, dialect), f"line {number}"))
        except trace_rows.RowRefused as exc:
            out.append((_SKIP, REFUSED, f"line {number}: {exc}"))
    return out


def _parse_chunk(chunk: Chunk) -> tuple[list[tuple[Any, ...]], int, int]:
    lines, before, end, last = chunk
    with _gc_paused():
        return parse_lines(lines, before, _WORKER_CONTEXT[0]), end, last


_WORKER_CONTEXT: list[Any] = []


def _init_worker(context: Context) -> None:
    _WORKER_CONTEXT[:] = [context]


def _parsed(
    chunks: Iterator[Chunk], context: Context, workers: int
) -> Iterator[tuple[list[tuple[Any, ...]], int, int]]:
    """Parsed chunks in file order: here, or in ``workers`` processes (a large file on a multi-core machine:
    parsing is ~4/5 of an import's CPU, so the insert of one batch overlaps the parsing of the next)."""
    if workers <= 0:
        for lines, before, end, last in chunks:
            yield parse_lines(lines, before, context), end, last
        return
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    # fork: the workers start at once with the prompts in hand; they only parse (never touch the inherited
    # database connection) and leave through os._exit, so nothing of the parent's is closed or flushed twice.
    if "fork" not in multiprocessing.get_all_start_methods():
        yield from _parsed(chunks, context, 0)
        return
    forked = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=forked, initializer=_init_worker, initargs=(context,)) as pool:
        pending: deque[Future[tuple[list[tuple[Any, ...]], int, int]]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_parse_chunk, chunk))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC while rows are built: they hold no cycles, and a collection every few hundred dicts
    costs ~10% of the import (the same as ingest does)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
