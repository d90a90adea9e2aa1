"""The serve process's spool writer: segment rotation off the request path.

``SpoolWriter`` rotates inside ``append``: when the open segment is full, the request that found it full
seals it (msync + fsync of 16 MB) and creates, pre-allocates and pre-faults the next one (``MAP_POPULATE``)
before its own record goes in. That is ~18 ms, every ~1.7 s at 10k spans/s, with the event loop blocked
(msync and a populating mmap hold the GIL): the p99 of `workbench serve`.

Here a helper thread keeps a spare segment ready (created, ``fallocate``d, mapped, its pages write-faulted in
one ``madvise(MADV_POPULATE_WRITE)`` made through ctypes so the GIL is released, locked and renamed into view
exactly as the base writer does), so a full segment is swapped for the spare under the lock in microseconds. The full
segment is then sealed by the helper thread: mark sealed, ``fsync`` (which writes the mapping's dirty pages, as
msync would, without holding the GIL), cut to its data, rename. Until that is done it is an open segment of a
live writer, read by ingest up to its high-water mark like any other, so durability is unchanged: a record is
in the shared mapping before ``append`` returns. ``flush``/``close`` seal everything synchronously and remove
the spare (it never held a record). Any failure falls back to the base writer's synchronous rotation, which
counts drops and reports a full spool or disk as before.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import struct
import sys
import threading
import time
from pathlib import Path

from ..capture import spool as base
from ..capture.spool import SpoolWriter

__all__ = ["RotatingAheadWriter"]

log = logging.getLogger("workbench.serve")
_PREFAULT_CHUNK = 1 << 20


def _populate_write(mapping: mmap.mmap, size: int) -> bool:
    """Map every page of a new segment writable now (``madvise(MADV_POPULATE_WRITE)``, Linux >= 5.14), so appends
    take no write fault per new page; called through ctypes, which releases the GIL for the ~10 ms it takes on
    16 MB (``mmap.madvise`` would hold it, stalling the event loop). False when the kernel cannot."""
    if _LIBC is None:
        return False
    view = ctypes.c_char.from_buffer(mapping)
    try:
        return _LIBC.madvise(ctypes.c_void_p(ctypes.addressof(view)), ctypes.c_size_t(size), _MADV_POPULATE_WRITE) == 0
    finally:
        del view


def _libc() -> ctypes.CDLL | None:
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()
_MADV_POPULATE_WRITE = 23


class _Segment:
    __slots__ = ("fd", "mapping", "path", "size", "used")

    def __init__(self, fd: int, path: Path, size: int, mapping: mmap.mmap, used: int = base.DATA_START) -> None:
        self.fd, self.path, self.size, self.mapping, self.used = fd, path, size, mapping, used


class RotatingAheadWriter(SpoolWriter):
    """A SpoolWriter whose rotations are a swap under the lock; segments are made and sealed by a helper thread."""

    def __init__(self, directory: Path, **options: object) -> None:
        super().__init__(directory, **options)  # type: ignore[arg-type]
        self._spare: _Segment | None = None
        self._to_seal: list[_Segment] = []
        self._wake = threading.Condition(threading.Lock())
        self._seal_lock = threading.Lock()  # one seal at a time; flush waits for the helper's
        self._stopping = False
        self._helper: threading.Thread | None = None
        self.rotations = 0  # swaps to a spare made ahead
        self.sync_rotations = 0  # rotations on the request path (no spare was ready, or a record did not fit)

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the helper thread and have the first segment and a spare made before the first request."""
        with self._lock:
            if self._fd < 0:
                super()._rotate(0)  # the first segment, synchronously, at start-up
        self._ensure_helper()

    def _ensure_helper(self) -> None:
        if self._helper is None or not self._helper.is_alive():
            self._stopping = False
            self._helper = threading.Thread(target=self._run, name="workbench-spool-ahead", daemon=True)
            self._helper.start()
        with self._wake:
            self._wake.notify()

    def wait_spare(self, timeout: float) -> bool:
        """Wait until a spare segment is ready (True), or ``timeout`` seconds (False)."""
        deadline = time.monotonic() + timeout
        while self._spare is None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def flush(self) -> None:
        """Everything appended so far durable and sealed (as SpoolWriter.flush); the spare is kept."""
        with self._lock:
            pending, self._to_seal = self._to_seal, []
        with self._seal_lock:
            for segment in pending:
                self._seal_segment(segment)
        super().flush()

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._helper is not None:
            self._helper.join(timeout=10)
        self.flush()
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            self._discard(spare)

    def _after_fork(self) -> None:
        super()._after_fork()
        # The child owns neither the parent's spare nor its helper thread (threads do not survive a fork).
        spare, self._spare, self._to_seal, self._helper = getattr(self, "_spare", None), None, [], None
        self._wake = threading.Condition(threading.Lock())
        self._seal_lock = threading.Lock()
        if spare is not None:
            spare.mapping.close()
            os.close(spare.fd)

    # -- rotation ----------------------------------------------------------------------------------------
    def _rotate(self, need: int) -> bool:
        """Called by ``append`` under the lock when the open segment is full: swap in the spare if it fits."""
        spare = self._spare
        if spare is None or self._fd < 0 or spare.size < base.DATA_START + need:
            if self._helper is not None:
                with self._wake:
                    self._wake.notify()
            if self._fd >= 0:
                self.sync_rotations += 1
            return super()._rotate(need)  # no spare (yet): the base writer's synchronous rotation
        assert self._map is not None and self._path is not None
        self._to_seal.append(_Segment(self._fd, self._path, self._capacity, self._map, self._pos))
        self._fd, self._path, self._pos, self._capacity, self._map = (
            spare.fd,
            spare.path,
            base.DATA_START,
            spare.size,
            spare.mapping,
        )
        self._spare = None
        self.rotations += 1
        with self._wake:
            self._wake.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and self._spare is not None and not self._to_seal:
                    self._wake.wait(1.0)
                if self._stopping:
                    return
            with self._lock:
                pending, self._to_seal = self._to_seal, []
            with self._seal_lock:
                for segment in pending:
                    self._seal_segment(segment)
            if self._spare is None and time.monotonic() >= self._retry_at:
                spare = self._make_spare()
                if spare is None:
                    with self._wake:  # the spool is full or the disk is: try again in a second
                        self._wake.wait(1.0)
                    continue
                with self._lock:
                    if self._spare is None and not self._stopping:
                        self._spare, spare = spare, None
                if spare is not None:
                    self._discard(spare)

    def _make_spare(self) -> _Segment | None:
        size = self.max_segment_bytes
        try:
            used = base.spool_bytes(self.directory)
            if used + size > self.limit_bytes:
                return None  # the base writer reports it when a record does not fit
            return self._create(size)
        except (OSError, base.SpoolError) as exc:
            log.debug("workbench serve: no spare spool segment (%s); rotation stays synchronous", exc)
            return None

    def _create(self, size: int) -> _Segment:
        """A new open segment, made as the base writer makes it, but with its pages write-faulted with the GIL
        released (or, on an older kernel, brought into the page cache by pread) instead of a populating mmap."""

        def prefault(fd: int, mapping: mmap.mmap) -> None:
            if not _populate_write(mapping, size):
                for offset in range(0, size, _PREFAULT_CHUNK):  # an older kernel: at least in the page cache
                    os.pread(fd, _PREFAULT_CHUNK, offset)

        fd, final, mapping = base.create_segment(self.directory, size, mmap.MAP_SHARED, prefault)
        return _Segment(fd, final, size, mapping)

    def _seal_segment(self, segment: _Segment) -> None:
        """Seal a full segment (the base writer's _seal, with fsync instead of msync + fsync: on Linux fsync
        writes the shared mapping's dirty pages too, and releases the GIL while it does)."""
        try:
            struct.pack_into("<I", segment.mapping, base._FLAGS_AT, base.SEALED)
            segment.mapping.close()
            os.ftruncate(segment.fd, segment.used)
            if self.fsync != "never":
                os.fsync(segment.fd)
            os.rename(segment.path, segment.path.with_name(segment.path.name.removesuffix(base.OPEN_SUFFIX)))
        except OSError as exc:
            log.error("workbench: could not seal spool segment %s: %s", segment.path.name, exc)
        finally:
            os.close(segment.fd)

    def _discard(self, segment: _Segment) -> None:
        """Remove a spare that never held a record."""
        try:
            segment.mapping.close()
            os.unlink(segment.path)
        except OSError as exc:
            log.warning("workbench: could not remove spare spool segment %s: %s", segment.path.name, exc)
        finally:
            os.close(segment.fd)
