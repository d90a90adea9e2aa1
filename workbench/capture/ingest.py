"""Spool -> store, in batches, exactly once.

Each batch's rows and the segment's new offset are committed in one transaction, and rows are inserted
with ON CONFLICT DO NOTHING on the trace id: a crash anywhere neither loses nor duplicates a trace.
One ingester at a time per spool (an flock on ``.ingest.lock``); others skip or wait.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import SpoolError, StoreUnavailableError
from ..store import Store
from ..store import traces as trace_rows
from .parse import record_to_row, split_payload
from .spool import list_segments, scan_segment, segment_key, writer_alive

__all__ = ["BackgroundIngester", "IngestStats", "ingest_spool"]

log = logging.getLogger("workbench.ingest")


@dataclass
class IngestStats:
    traces: int = 0
    segments: int = 0
    removed_segments: int = 0
    quarantined: int = 0
    skipped: bool = False                    # another ingester held the lock
    quarantine_files: list[str] = field(default_factory=list)


class _SpoolLock:
    def __init__(self, directory: Path, *, wait: bool) -> None:
        self.path = directory / ".ingest.lock"
        self.wait = wait
        self.fd = -1

    def __enter__(self) -> bool:
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise SpoolError(f"cannot open spool lock {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _quarantine(directory: Path, key: str, offset: int, data: bytes, stats: IngestStats) -> None:
    target = directory / "quarantine"
    target.mkdir(exist_ok=True)
    path = target / f"{key}.{offset}.bad"
    path.write_bytes(data)
    stats.quarantined += 1
    stats.quarantine_files.append(str(path))


def ingest_spool(*args: Any, pause_gc: bool = False, **kwargs: Any) -> IngestStats:
    """Move every complete spooled record into the store; remove segments that are done.

    ``pause_gc`` (for the CLI, never inside an app) pauses the cyclic garbage collector meanwhile: a
    batch allocates tens of thousands of small dicts, none in cycles, and collections would only
    rescan them (about a third of the CPU cost).
    """
    if not pause_gc:
        return _ingest_spool(*args, **kwargs)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _ingest_spool(*args, **kwargs)
    finally:
        if enabled:
            gc.enable()


def _ingest_spool(
    store: Store,
    directory: Path,
    *,
    batch: int = 5_000,
    wait: bool = True,
    progress: Callable[[int], None] | None = None,
) -> IngestStats:
    stats = IngestStats()
    directory = Path(directory)
    if not directory.exists():
        return stats
    if not directory.is_dir() or not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        raise SpoolError(f"spool directory {directory} is not a readable and writable directory")
    with _SpoolLock(directory, wait=wait) as locked:
        if not locked:
            stats.skipped = True
            return stats
        segments = list_segments(directory)
        with store.read() as conn:
            offsets = trace_rows.load_offsets(conn, [segment_key(p) for p in segments])
        for path in segments:
            stats.segments += 1
            key = segment_key(path)
            live = writer_alive(path)
            offset = offsets.get(key, 0)
            while True:
                scan = scan_segment(path, offset, live=live, max_frames=batch)
                rows: list[dict[str, object]] = []
                for item in scan.frames:
                    try:
                        rows.append(record_to_row(*split_payload(item.payload)))
                    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                        log.warning("quarantined unreadable record at offset %d of %s: %s", item.offset, key, exc)
                        _quarantine(directory, key, item.offset, item.payload, stats)
                for at, data in scan.quarantined:
                    _quarantine(directory, key, at, data, stats)
                if scan.end != offset:
                    with store.write() as conn:
                        trace_rows.insert_traces(conn, rows)
                        trace_rows.save_offset(conn, key, scan.end)
                    stats.traces += len(rows)
                    if progress is not None:
                        progress(len(rows))
                    offset = scan.end
                if scan.complete:
                    path.unlink(missing_ok=True)
                    with store.write() as conn:
                        trace_rows.delete_offset(conn, key)
                    stats.removed_segments += 1
                    break
                if not scan.frames and not scan.quarantined:
                    break
    return stats


class BackgroundIngester:
    """A daemon thread that ingests the spool every ``interval`` seconds; survives store outages."""

    def __init__(self, store: Store, directory: Path, *, interval: float = 1.0) -> None:
        self.store = store
        self.directory = Path(directory)
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.last_error: str | None = None

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

    def run_once(self, *, wait: bool) -> bool:
        try:
            ingest_spool(self.store, self.directory, wait=wait)
        except (StoreUnavailableError, SpoolError) as exc:
            self.last_error = str(exc)
            if not self._failing:
                log.warning("workbench: ingest paused, records stay in the spool: %s", exc)
            self._failing = True
            return False
        except Exception as exc:  # noqa: BLE001 - never kill the app's process
            self.last_error = str(exc)
            log.exception("workbench: ingest failed; records stay in the spool")
            return False
        if self._failing:
            log.warning("workbench: ingest resumed")
        self._failing = False
        self.last_error = None
        return True

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
