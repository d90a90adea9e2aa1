"""Spool -> store, in batches, exactly once.

Each batch's rows and the segment's new offset are committed in one transaction, and rows are inserted
with ON CONFLICT DO NOTHING on the trace id: a crash anywhere neither loses nor duplicates a trace.
One ingester at a time per spool (an flock on ``.ingest.lock``); others skip or wait (with a deadline
on close paths).

Nothing in a record can stop ingest: a record that does not parse, or a row the store would refuse
(an over-long id, a NUL character, an integer out of range), is moved to ``spool/quarantine/`` with its
reason and the rest of its batch commits. A segment is deleted only after a durable commit
(SQLite ``synchronous=FULL`` for that transaction; PostgreSQL commits are durable).

Ingest reads no further than each segment's published high-water mark, and pauses the cyclic GC while
it builds a batch (tens of thousands of small acyclic objects: collections would only rescan them).

Throughput: batches are grouped into transactions of ~20k rows; a plain chat completion is read straight
into the table's column order; SQLite rows go to the driver's executemany, PostgreSQL rows are COPYed.
A SQLite backlog of more than a quarter of the table is inserted without the secondary trace indexes,
which are then built once, in the same transaction (see GROUP_ROWS and REBUILD_SHARE for the measurements).
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import SpoolError, StoreError, StoreUnavailableError
from .parse import chat_row_values, record_to_row, split_payload
from .spool import (
    DATA_START,
    FILE_MODE,
    ingest_lock,
    list_segments,
    read_header,
    scan_segment,
    segment_key,
    writer_alive,
)

if TYPE_CHECKING:
    from ..store import Store
    from ..store.traces import Connection

__all__ = ["BackgroundIngester", "IngestStats", "follow_spool", "ingest_spool"]

log = logging.getLogger("workbench.ingest")


@dataclass
class IngestStats:
    traces: int = 0
    segments: int = 0
    removed_segments: int = 0
    quarantined: int = 0  # corrupt or torn spool bytes, and rejected rows
    rejected: int = 0  # of which: rows the store would refuse (poison rows)
    skipped: bool = False  # another ingester held the lock
    index_rebuilds: int = 0  # transactions that inserted without the secondary indexes and built them after
    quarantine_files: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: IngestStats) -> None:
        self.traces += other.traces
        self.segments += other.segments
        self.removed_segments += other.removed_segments
        self.quarantined += other.quarantined
        self.rejected += other.rejected
        self.index_rebuilds += other.index_rebuilds
        self.quarantine_files += other.quarantine_files
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def summary(self) -> str:
        """One line: what was quarantined and why (for the CLI and logs)."""
        why = "; ".join(f"{n} × {reason}" for reason, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]))
        where = self.quarantine_files[0].rsplit("/", 1)[0] if self.quarantine_files else "spool/quarantine"
        return f"quarantined {self.quarantined} records ({why}) in {where}"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _quarantine(
    directory: Path, key: str, offset: int, data: bytes, reason: str, stats: IngestStats, *, rejected: bool = False
) -> None:
    """Move one record (or run of bytes) aside with a one-line reason; nothing is silently lost."""
    target = directory / "quarantine"
    target.mkdir(mode=0o700, exist_ok=True)
    path = target / f"{key}.{offset}.bad"
    _write_private(path, data)
    _write_private(target / f"{key}.{offset}.why", reason.encode() + b"\n")
    stats.quarantined += 1
    stats.rejected += rejected
    stats.quarantine_files.append(str(path))
    short = ":".join(reason.split(":", 2)[:2])  # "invalid row: user_id", "corrupt record (checksum mismatch)"
    stats.reasons[short] = stats.reasons.get(short, 0) + 1


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# Rows per commit: fewer commits write each touched index page to the WAL fewer times (5,000 -> 20,000 rows
# per commit: -12% of the insert+commit CPU on 200k traces), while the write lock is held for well under a second.
GROUP_ROWS = 20_000
# A large backlog is inserted without the traces table's secondary indexes, which are then built once by a
# sort, all in one transaction (SQLite). Measured on 200k traces with unique response ids: insert with the five
# indexes 2.9 s CPU; insert without them 1.3 s plus 0.36 s to build them. Building costs ~1.8 us per row
# already stored and saves ~8 us per new row. Ingest of a backlog into a table of 200k (whole ingest CPU,
# incremental -> rebuilt): 40k rows 1.43 -> 1.39 s (break-even near a fifth), 70k rows 2.56 -> 2.09 s.
REBUILD_MIN_ROWS = 20_000
REBUILD_SHARE = 1 / 4
REBUILD_MAX_ROWS = 100_000  # one rebuild transaction holds the write lock for ~2 s of CPU at most


def ingest_spool(
    store: Store,
    directory: Path,
    *,
    batch: int = 5_000,
    wait: bool = True,
    timeout: float | None = None,
    progress: Callable[[int], None] | None = None,
    pause_gc: bool = True,
    rebuild_indexes: bool | None = None,
) -> IngestStats:
    """Move every complete spooled record into the store; remove segments that are done.

    ``wait`` blocks for the spool's ingest lock (``timeout`` bounds that wait); without it a busy lock
    returns at once with ``skipped``. ``pause_gc`` pauses the cyclic GC while each batch is built.
    ``rebuild_indexes``: None decides by the backlog's size against the table's (SQLite only, see
    REBUILD_SHARE); True/False force it on or off (tests, benchmarks).
    """
    from ..store import traces as trace_rows

    stats = IngestStats()
    directory = Path(directory)
    if not directory.exists():
        return stats
    if not directory.is_dir() or not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        raise SpoolError(f"spool directory {directory} is not a readable and writable directory")
    with ingest_lock(directory, wait=wait, timeout=timeout) as locked:
        if not locked:
            stats.skipped = True
            return stats
        segments = list_segments(directory)
        if not segments:
            return stats
        with store.read() as conn:
            offsets = trace_rows.load_offsets(conn, [segment_key(p) for p in segments])
        starts = [offsets.get(segment_key(p), DATA_START) for p in segments]
        live = [writer_alive(p) for p in segments]  # before reading: a dead writer's segment is final
        group = _Group(
            store,
            stats,
            progress,
            durable=not all(live),
            pending=sum(_unread(p, at) for p, at in zip(segments, starts, strict=True)),
            rebuild=rebuild_indexes if store.dialect == "sqlite" else False,
        )
        try:
            for path, offset, alive in zip(segments, starts, live, strict=True):
                stats.segments += 1
                _ingest_segment(group, directory, path, offset, alive, stats, batch=batch, pause_gc=pause_gc)
            group.commit()
        finally:
            group.abandon()
    return stats


def _unread(path: Path, offset: int) -> int:
    """Bytes of a segment past ``offset`` up to its published mark (0 if it cannot be read now)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        header = read_header(fd)
        return max(0, header.hwm - offset) if header is not None else 0
    except OSError:
        return 0
    finally:
        os.close(fd)


class _Group:
    """One write transaction holding several batches (and, for a large backlog, an index rebuild).

    Every batch saves its segment's offset in the same transaction as its rows, so whatever a crash
    interrupts rolls back whole and is read again. A segment read to its end has its offset row deleted
    in the transaction and its file removed only after that transaction committed durably.
    """

    def __init__(
        self,
        store: Store,
        stats: IngestStats,
        progress: Callable[[int], None] | None,
        *,
        durable: bool,
        pending: int,
        rebuild: bool | None,
    ) -> None:
        self.store = store
        self.stats = stats
        self.progress = progress
        self.durable = durable
        self.pending = pending  # spool bytes not ingested yet, for the rebuild decision
        self.rebuild = rebuild
        self._stack: ExitStack | None = None
        self._conn: Connection | None = None
        self._indexes: list[str] | None = None
        self._limit = GROUP_ROWS
        self._rows = 0
        self._finished: list[Path] = []

    def conn(self, rows: int, nbytes: int) -> Connection:
        """The open transaction, begun on first use; ``rows`` records of ``nbytes`` are about to go in."""
        if self._conn is None:
            from ..store import traces as trace_rows

            stack = ExitStack()
            conn = stack.enter_context(self.store.write(durable=self.durable))
            self._stack, self._conn = stack, conn
            if self._rebuild_pays(conn, rows, nbytes):
                self._indexes = trace_rows.drop_secondary_indexes(conn)
                self._limit = REBUILD_MAX_ROWS
        return self._conn

    def _rebuild_pays(self, conn: Connection, rows: int, nbytes: int) -> bool:
        if self.rebuild is not None:
            return self.rebuild
        from ..store import traces as trace_rows

        backlog = self.pending * rows // max(nbytes, 1)  # rows still to come, at this batch's record size
        return backlog >= REBUILD_MIN_ROWS and backlog >= REBUILD_SHARE * trace_rows.sqlite_row_estimate(conn)

    def added(self, rows: int, nbytes: int) -> None:
        self._rows += rows
        self.pending = max(0, self.pending - nbytes)

    def finish(self, path: Path) -> None:
        self._finished.append(path)

    def full(self) -> bool:
        return self._rows >= self._limit

    def commit(self) -> None:
        if self._stack is None:
            return
        from ..store import traces as trace_rows

        rebuilt = self._indexes is not None
        if self._indexes is not None:
            trace_rows.restore_indexes(self._conn, self._indexes)  # type: ignore[arg-type]
        stack, rows, finished = self._stack, self._rows, self._finished
        self._stack, self._conn, self._indexes, self._rows, self._finished = None, None, None, 0, []
        self._limit = GROUP_ROWS
        stack.close()  # commits (durably when a segment finished in it: see ingest_spool)
        self.stats.traces += rows
        self.stats.index_rebuilds += rebuilt
        if self.progress is not None and rows:
            self.progress(rows)
        for path in finished:  # the rows are on disk: the only other copy may go
            path.unlink(missing_ok=True)
            self.stats.removed_segments += 1

    def abandon(self) -> None:
        """Roll back what was not committed (after an error; a no-op after commit)."""
        if self._stack is not None:
            stack = self._stack
            self._stack, self._conn, self._indexes, self._rows, self._finished = None, None, None, 0, []
            try:
                stack.__exit__(RuntimeError, RuntimeError("ingest abandoned"), None)
            except Exception:  # noqa: BLE001 - the error that brought us here is the one to report
                log.debug("rollback after a failed ingest failed too", exc_info=True)


def _ingest_segment(
    group: _Group,
    directory: Path,
    path: Path,
    offset: int,
    live: bool,
    stats: IngestStats,
    *,
    batch: int,
    pause_gc: bool,
) -> None:
    from ..store import traces as trace_rows

    key = segment_key(path)
    dialect = group.store.dialect
    encode_row, encode_values = trace_rows.encode_trace_row, trace_rows.encode_trace_values
    while True:
        scan = scan_segment(path, offset, live=live, max_records=batch)
        if scan.missing:
            return  # sealed and renamed meanwhile: found again under its new name next pass
        rows: list[tuple[Any, ...]] = []
        where: list[tuple[int, bytes]] = []
        with _gc_paused() if pause_gc else _nothing():
            for record in scan.records:
                try:
                    meta, body = split_payload(record.payload)
                    try:
                        values = chat_row_values(meta, body)
                    except Exception:  # noqa: BLE001 - any surprise: the general parser decides
                        values = None
                    row = record_to_row(meta, body) if values is None else None
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError) as exc:
                    _quarantine(
                        directory,
                        key,
                        record.offset,
                        record.payload,
                        f"unreadable record: {type(exc).__name__}: {exc}",
                        stats,
                    )
                    continue
                try:
                    encoded = encode_values(values, dialect) if row is None else encode_row(row, dialect)  # type: ignore[arg-type]
                except trace_rows.RowRefused as exc:
                    problem: str | None = str(exc)
                else:
                    problem = None
                if problem is not None:
                    _quarantine(
                        directory, key, record.offset, record.payload, f"invalid row: {problem}", stats, rejected=True
                    )
                    continue
                rows.append(encoded)
                where.append((record.offset, record.payload))
        for at, data, reason in scan.quarantined:
            _quarantine(directory, key, at, data, reason, stats)
        if scan.end != offset:
            nbytes = scan.end - offset
            conn = group.conn(len(rows), nbytes)
            refused = trace_rows.insert_traces(conn, rows)
            for index, reason in refused:  # the store refused what the checks let through: set aside too
                at, data = where[index]
                _quarantine(directory, key, at, data, f"store refused row: {reason}", stats, rejected=True)
            trace_rows.save_offset(conn, key, scan.end)
            group.added(len(rows) - len(refused), nbytes)
            offset = scan.end
        if scan.complete:
            # The rows must be on disk before the only other copy goes: deleted after a durable commit.
            trace_rows.delete_offset(group.conn(0, 0), key)
            group.finish(path)
            if group.full():
                group.commit()
            return
        if group.full():
            group.commit()
        if not scan.records and not scan.quarantined:
            return


@contextmanager
def _nothing() -> Iterator[None]:
    yield


StoreProvider = Callable[[], "Store"]


class BackgroundIngester:
    """A daemon thread that ingests the spool every ``interval`` seconds; survives store outages.

    ``store`` may be a Store or a callable returning one (raising StoreUnavailableError while the store
    cannot be reached): capture starts spooling before the store is up and ingest catches up later.
    """

    def __init__(self, store: Store | StoreProvider, directory: Path, *, interval: float = 1.0) -> None:
        self._provider: StoreProvider = store if callable(store) else (lambda: store)  # type: ignore[assignment]
        self.directory = Path(directory)
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.last_error: str | None = None
        self.last_stats = IngestStats()  # what passes since it was last read moved (follow_spool reads it)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="workbench-ingest", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                break
            delay = self.interval if self.run_once(wait=False) else min(delay * 2, 30.0)

    def run_once(self, *, wait: bool, timeout: float | None = None) -> bool:
        store = None
        try:
            store = self._provider()
            stats = ingest_spool(store, self.directory, wait=wait, timeout=timeout)
        except (StoreError, SpoolError) as exc:
            self.last_error = str(exc)
            if not self._failing:
                log.warning("workbench: ingest paused, records stay in the spool: %s", exc)
            self._failing = True
            if store is not None and isinstance(exc, StoreUnavailableError):
                store.engine.dispose()  # drop pooled connections that may be stuck (read-only file, dead socket)
            return False
        except Exception as exc:  # noqa: BLE001 - never kill the app's process
            self.last_error = str(exc)
            log.exception("workbench: ingest failed; records stay in the spool")
            return False
        self.last_stats.add(stats)
        if stats.quarantined:
            log.warning("workbench: %s", stats.summary())
        if self._failing:
            log.warning("workbench: ingest resumed")
        self._failing = False
        self.last_error = None
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread; False if it is still inside a store call after ``timeout`` (it is a daemon)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            return not self._thread.is_alive()
        return True


def follow_spool(
    store: Store | StoreProvider,
    directory: Path,
    *,
    interval: float = 0.5,
    stop: threading.Event | None = None,
    parent_pid: int | None = None,
    idle_exit: float | None = None,
    on_pass: Callable[[IngestStats], None] | None = None,
) -> IngestStats:
    """Ingest continuously until ``stop`` is set, the parent process is gone, or idle for ``idle_exit`` s.

    One follower per spool (an flock on ``.follow.lock``): a second one returns at once, so every app
    process may start one (``workbench.open(ingest="process")``) and they share it.
    """
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    total = IngestStats()
    lock_fd = os.open(directory / ".follow.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        stop = stop or threading.Event()
        while True:  # an app's sidecar waits for its turn while its app lives; a command line one does not
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if parent_pid is None or stop.is_set() or not _alive(parent_pid):
                    total.skipped = True
                    return total
                stop.wait(interval)
        ingester = BackgroundIngester(store, directory, interval=interval)
        idle_since = time.monotonic()
        while not stop.is_set():
            before = total.traces
            ok = ingester.run_once(wait=True, timeout=interval * 4)
            if ok:
                pass_stats = ingester_stats(ingester)
                total.add(pass_stats)
                if on_pass is not None:
                    on_pass(pass_stats)
            if total.traces != before or any(writer_alive(p) for p in list_segments(directory)):
                idle_since = time.monotonic()
            if parent_pid is not None and not _alive(parent_pid):
                ingester.run_once(wait=True, timeout=30)  # what the parent left behind
                total.add(ingester_stats(ingester))
                break
            if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                break
            stop.wait(interval if ok else min(interval * 4, 5.0))
    finally:
        os.close(lock_fd)
    return total


def ingester_stats(ingester: BackgroundIngester) -> IngestStats:
    stats = ingester.last_stats
    ingester.last_stats = IngestStats()
    return stats


def _alive(pid: int) -> bool:
    """Whether the app that started this follower still runs (it is our parent until it dies)."""
    return os.getppid() == pid
