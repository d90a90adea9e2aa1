"""Append-only spool: the capture hot path's only I/O.

Layout of a segment file (little-endian)::

    [0, 64)    segment header: magic b"WBSPOOL2", high-water mark (u64, end of committed records),
               base (u64, start of data not erased by purge), writer pid (u32), flags (u32, 1 = sealed),
               created (u64 ns)
    [64, ...)  records, 8-byte aligned: magic (u32), body length (u32), crc32 (u32) over magic, length and
               body, reserved (u32); then the body (``meta JSON \\n response bytes``)

Writing a record: the body is copied into the segment's shared memory map first, then the 16-byte record
header is written with one ``struct.pack_into`` (the commit marker), then the high-water mark. A record
is in the OS page cache when ``append`` returns, so it survives the app being killed (SIGKILL included)
without a system call per record. A host crash (power loss, kernel panic) loses what the kernel had not
written back yet: with ``fsync="rotate"`` (default) that is at most the open segment's records since
the last write-back (Linux writes dirty pages back within ~30 s); ``fsync="always"`` msyncs every
record (slow), ``fsync="never"`` skips even the fsync at rotation.

Reading never scans for a pattern: a reader starts at a record boundary it knows (the segment's
committed ingest offset, or 64) and follows the lengths, reading no further than the high-water mark.
Content inside a body therefore cannot pass for a record, and a record being written is invisible
until its header lands. Bytes that fail their CRC are moved aside (quarantined), never parsed.

Lifecycle: a writer creates its segment under a hidden temporary name, pre-allocates it (``fallocate``,
so a full disk fails here, at rotation, and never as SIGBUS in a page fault), maps and pre-faults it,
takes a shared ``flock`` and only then renames it to ``<id>-<pid>.wbspool.open``: an ingester that can
take an exclusive lock on a visible segment knows its writer is gone. Sealing (rotation, flush, close)
msyncs and fsyncs (by policy), marks the header sealed, truncates the file to its data and renames it to
``<id>-<pid>.wbspool``. The spool is bounded (``limit_bytes``): when a new segment would exceed it, or
the disk is full, capture stops and counts the records it drops (``SpoolWriter.dropped``), retrying at
most once a second; the app is never disturbed.

Consumed prefix (for purge): a segment's records in ``[64, offset)`` — ``offset`` is the committed
ingest offset in the store's ``spool_offsets`` table, keyed by ``segment_key(path)`` — are never read
again. ``erase_consumed(path, offset)`` zero-fills that range and records it in the header's base;
call it while holding ``ingest_lock(directory)``.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpoolError
from ..ids import new_id

__all__ = [
    "DATA_START",
    "Record",
    "SegmentScan",
    "SpoolWriter",
    "create_segment",
    "encode_record",
    "erase_consumed",
    "ingest_lock",
    "iter_payloads",
    "list_segments",
    "read_header",
    "scan_segment",
    "segment_key",
    "spool_bytes",
    "writer_alive",
]

log = logging.getLogger("workbench.spool")

SEGMENT_MAGIC = b"WBSPOOL2"
RECORD_MAGIC = 0x31524257  # b"WBR1"; first byte non-zero, so a zeroed region never looks like a header
OPEN_SUFFIX = ".open"
SEGMENT_SUFFIX = ".wbspool"
CREATING_SUFFIX = ".creating"
DATA_START = 64
SEALED = 1
FILE_MODE = 0o600
DIR_MODE = 0o700

_SEG = struct.Struct("<8sQQIIQ")  # magic, hwm, base, pid, flags, created_ns
_HWM = struct.Struct("<Q")
_HWM_AT, _BASE_AT, _FLAGS_AT = 8, 16, 28
_REC = struct.Struct("<IIII")  # magic, length, crc, reserved
_REC_PREFIX = struct.Struct("<II")
_HEAD = _REC.size
_READ_CHUNK = 8 << 20
_crc32 = zlib.crc32


def _record_crc(length: int, *parts: bytes) -> int:
    crc = _crc32(_REC_PREFIX.pack(RECORD_MAGIC, length))
    for part in parts:
        crc = _crc32(part, crc)
    return crc


def encode_record(payload: bytes) -> bytes:
    """One record as it lies in a segment (for tests and tools; the writer builds it in place)."""
    n = len(payload)
    pad = -(_HEAD + n) % 8
    return _REC.pack(RECORD_MAGIC, n, _record_crc(n, payload), 0) + payload + b"\0" * pad


class SpoolWriter:
    """Appends records to this process's open segment; rotates by size; bounded; never raises on append."""

    def __init__(
        self,
        directory: Path,
        *,
        max_segment_bytes: int = 16 << 20,
        fsync: str = "rotate",
        limit_bytes: int = 1 << 30,
    ) -> None:
        if fsync not in ("always", "rotate", "never"):
            raise SpoolError(f"fsync policy must be always, rotate or never, not {fsync!r}")
        self.directory = Path(directory)
        self.max_segment_bytes = max(max_segment_bytes, 4096)
        self.fsync = fsync
        self.limit_bytes = limit_bytes
        self.dropped = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._fd = -1
        self._path: Path | None = None
        self._pos = DATA_START
        self._capacity = 0
        self._map: mmap.mmap | None = None
        self._retry_at = 0.0
        try:
            self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {self.directory}: {exc.strerror}") from exc
        if not self.directory.is_dir():
            raise SpoolError(f"spool directory {self.directory} is not a directory")
        os.register_at_fork(after_in_child=self._after_fork)

    # -- hot path ---------------------------------------------------------------------------------
    def append(self, head: bytes, body: bytes = b"") -> bool:
        """Append one record whose body is ``head \\n body``; False (and counted) if it had to be dropped."""
        nh = len(head)
        n = nh + 1 + len(body)
        need = (_HEAD + n + 7) & ~7
        with self._lock:
            pos = self._pos
            end = pos + need
            if end > self._capacity and not self._rotate(need):
                self.dropped += 1
                return False
            pos = self._pos
            end = pos + need
            m = self._map
            start = pos + _HEAD
            split = start + nh
            m[start:split] = head  # type: ignore[index]
            m[split] = 10  # type: ignore[index]
            m[split + 1 : start + n] = body  # type: ignore[index]
            crc = _crc32(body, _crc32(b"\n", _crc32(head, _crc32(_REC_PREFIX.pack(RECORD_MAGIC, n)))))
            _REC.pack_into(m, pos, RECORD_MAGIC, n, crc, 0)  # type: ignore[arg-type]  # the commit marker
            _HWM.pack_into(m, _HWM_AT, end)  # type: ignore[arg-type]
            self._pos = end
            if self.fsync == "always":
                page = pos & ~(mmap.PAGESIZE - 1)
                m.flush(page, end - page)  # type: ignore[union-attr]
        return True

    # -- segments ---------------------------------------------------------------------------------
    def _rotate(self, need: int) -> bool:
        """Seal the open segment and open a new one big enough; False when the spool is full."""
        if self._fd >= 0:
            self._seal()
        now = time.monotonic()
        if now < self._retry_at:
            return False
        size = max(self.max_segment_bytes, DATA_START + need)
        try:
            used = spool_bytes(self.directory)
            if used + size > self.limit_bytes:
                raise SpoolError(
                    f"spool {self.directory} holds {used:,} bytes; another segment would pass its limit of "
                    f"{self.limit_bytes:,} (is ingest running?)"
                )
            self._open_segment(size)
        except (OSError, SpoolError) as exc:
            self._retry_at = now + 1.0
            message = str(exc) if isinstance(exc, SpoolError) else f"cannot open a spool segment: {exc}"
            if self.last_error is None:
                log.warning("workbench: capture paused, calls are not recorded (counted as dropped): %s", message)
            self.last_error = message
            return False
        if self.last_error is not None:
            log.warning("workbench: capture resumed after dropping %d records", self.dropped)
            self.last_error = None
        return True

    def _open_segment(self, size: int) -> None:
        fd, final, mapping = create_segment(
            self.directory, size, mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0), lambda fd, m: _prefault_write(m)
        )
        self._fd, self._path, self._pos, self._capacity, self._map = fd, final, DATA_START, size, mapping

    def _seal(self) -> None:
        """Seal the open segment: msync + fsync (by policy), mark sealed, cut to its data, rename, unlock."""
        fd, path, used, mapping = self._fd, self._path, self._pos, self._map
        self._fd, self._path, self._pos, self._capacity, self._map = -1, None, DATA_START, 0, None
        assert mapping is not None and path is not None
        try:
            struct.pack_into("<I", mapping, _FLAGS_AT, SEALED)
            if self.fsync != "never":
                mapping.flush()
            mapping.close()
            os.ftruncate(fd, used)
            if self.fsync != "never":
                os.fsync(fd)
            os.rename(path, path.with_name(path.name.removesuffix(OPEN_SUFFIX)))
        except OSError as exc:
            # Never raise into the app. The records stay readable under the .open name if it still exists.
            log.error("workbench: could not seal spool segment %s: %s", path.name, exc)
        finally:
            os.close(fd)

    def flush(self) -> None:
        """Make everything appended so far durable (fsync by policy) and visible as a sealed segment."""
        with self._lock:
            if self._fd >= 0:
                self._seal()
            self._retry_at = 0.0  # space may have been freed (ingest ran): try again at the next append

    def close(self) -> None:
        self.flush()

    @property
    def open_segment(self) -> Path | None:
        return self._path

    def _after_fork(self) -> None:
        # The child must not append to (or seal) the parent's segment: start fresh. Closing the child's copy
        # of the descriptor leaves the parent's lock in place (same open file description, still referenced).
        self._lock = threading.Lock()
        if self._map is not None:
            self._map.close()
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._path, self._pos, self._capacity, self._map = -1, None, DATA_START, 0, None


def create_segment(
    directory: Path, size: int, map_flags: int, prefault: Callable[[int, mmap.mmap], None]
) -> tuple[int, Path, mmap.mmap]:
    """Make a new open segment: allocated, mapped, its header written, locked, then made visible by a rename.

    One home for the order that crash safety rests on (fallocate before mapping, so a full disk fails here and
    not as SIGBUS on a page fault later; visible only once locked, so an ingester never mistakes it for a dead
    writer's). Writers differ only in how pages are brought in (``map_flags``, ``prefault(fd, mapping)``): the
    app's writer populates in the call that rotates, serve's spare-segment thread with the GIL released."""
    name = f"{new_id()}-{os.getpid()}{SEGMENT_SUFFIX}"
    temp = directory / f".{name}{CREATING_SUFFIX}"
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    mapping = None
    try:
        os.posix_fallocate(fd, 0, size)
        mapping = mmap.mmap(fd, size, map_flags, mmap.PROT_READ | mmap.PROT_WRITE)
        prefault(fd, mapping)
        _SEG.pack_into(mapping, 0, SEGMENT_MAGIC, DATA_START, DATA_START, os.getpid(), 0, time.time_ns())
        fcntl.flock(fd, fcntl.LOCK_SH)
        _before_visible(temp)
        final = directory / f"{name}{OPEN_SUFFIX}"
        os.rename(temp, final)
    except BaseException:
        if mapping is not None:
            mapping.close()
        os.close(fd)
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    return fd, final, mapping


_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)  # Linux >= 5.14; Python 3.11 lacks the name


def _prefault_write(mapping: mmap.mmap) -> None:
    """Map the segment's pages writable now, at rotation, rather than one write fault per page on the hot path.

    MAP_POPULATE maps a shared file mapping's pages read-only (the kernel tracks dirtying by the first write),
    so every new 4 KiB page cost an append a write fault (``page_mkwrite``: a few to tens of microseconds on
    ext4, one every ~5 records). This write-faults them all in one system call. Pages the kernel writes back
    later (dirty for ~30 s) are write-protected again and fault once more; an older kernel (EINVAL) or
    another platform keeps the per-page faults."""
    if not hasattr(mapping, "madvise"):  # pragma: no cover - not Linux
        return
    try:
        mapping.madvise(_MADV_POPULATE_WRITE)
    except (OSError, ValueError):  # pragma: no cover - kernel before 5.14
        pass


def _before_visible(path: Path) -> None:
    """Test seam: runs while a new segment exists only under its temporary name (see tests/reliability)."""
    hook = _hooks.get("before_visible")
    if hook is not None:
        hook(path)


_hooks: dict[str, object] = {}


# -- reading --------------------------------------------------------------------------------------------
def list_segments(directory: Path) -> list[Path]:
    """Sealed and open segments, oldest first (names start with a time-ordered id); never temporary ones."""
    if not directory.is_dir():
        return []
    try:
        names = sorted(
            p
            for p in directory.iterdir()
            if p.name.endswith(SEGMENT_SUFFIX) or p.name.endswith(SEGMENT_SUFFIX + OPEN_SUFFIX)
        )
    except OSError as exc:
        raise SpoolError(f"cannot read spool directory {directory}: {exc.strerror}") from exc
    return [p for p in names if not p.name.startswith(".")]


def spool_bytes(directory: Path) -> int:
    """Bytes the spool's segments take (allocated size; what the limit counts)."""
    total = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if SEGMENT_SUFFIX in entry.name:
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                pass
    return total


def segment_key(path: Path) -> str:
    """Stable name of a segment whether open or sealed (the offset table is keyed by it)."""
    return path.name.removesuffix(OPEN_SUFFIX)


def writer_alive(path: Path) -> bool:
    """Whether a live writer still holds the segment (shared flock); sealed segments have none."""
    if not path.name.endswith(OPEN_SUFFIX):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@dataclass(frozen=True)
class SegmentHeader:
    hwm: int
    base: int
    pid: int
    sealed: bool


def read_header(fd: int) -> SegmentHeader | None:
    """The segment header, or None if the file is not a segment of this format."""
    raw = os.pread(fd, DATA_START, 0)
    if len(raw) < DATA_START:
        return None
    magic, hwm, base, pid, flags, _created = _SEG.unpack_from(raw)
    if magic != SEGMENT_MAGIC:
        return None
    return SegmentHeader(hwm, base, pid, bool(flags & SEALED))


@dataclass(frozen=True)
class Record:
    offset: int  # where the record starts
    end: int  # where the next record starts
    payload: bytes


@dataclass
class SegmentScan:
    records: list[Record]
    end: int  # consumed up to here (records + quarantined)
    quarantined: list[tuple[int, bytes, str]] = field(default_factory=list)  # offset, bytes, reason
    complete: bool = False  # nothing more will ever be written or read
    missing: bool = False  # the file went away (renamed on sealing): look again

    @property
    def frames(self) -> list[Record]:  # the name older callers used
        return self.records


def scan_segment(
    path: Path,
    start: int,
    *,
    live: bool,
    max_records: int = 10_000,
    max_frames: int | None = None,
) -> SegmentScan:
    """Records from ``start`` (a record boundary), up to the high-water mark; corrupt bytes quarantined.

    ``live``: the writer still holds the segment, so only what it published is read. Otherwise the
    segment is final: one record committed after the last published mark is picked up, and anything
    else non-zero after the data (a torn record) is quarantined.
    """
    if max_frames is not None:
        max_records = max_frames
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return SegmentScan([], start, missing=True)
    except OSError as exc:
        raise SpoolError(f"cannot read spool segment {path}: {exc.strerror}") from exc
    try:
        header = read_header(fd)
        size = os.fstat(fd).st_size
        if header is None:
            data = os.pread(fd, size, 0)
            return SegmentScan([], size, [(0, data, "not a spool segment of this format")], complete=not live)
        start = max(start, header.base, DATA_START)
        hwm = min(header.hwm, size)
        return _scan(fd, path, start, hwm, size, live=live, max_records=max_records)
    except OSError as exc:
        raise SpoolError(f"cannot read spool segment {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def _scan(fd: int, path: Path, start: int, hwm: int, size: int, *, live: bool, max_records: int) -> SegmentScan:
    records: list[Record] = []
    quarantined: list[tuple[int, bytes, str]] = []
    pos = start
    unpack = _REC.unpack_from
    while pos < hwm and len(records) < max_records:
        data = os.pread(fd, min(hwm - pos, _READ_CHUNK), pos)
        if len(data) >= _HEAD:
            magic, n, _crc, _ = unpack(data, 0)
            need = (_HEAD + n + 7) & ~7
            if magic == RECORD_MAGIC and len(data) < need and pos + need <= hwm:
                data = os.pread(fd, need, pos)  # one record larger than the read chunk
        limit = len(data)
        at = 0
        corrupt = limit < _HEAD
        while at + _HEAD <= limit and len(records) < max_records:
            magic, n, crc, _ = unpack(data, at)
            need = (_HEAD + n + 7) & ~7
            if magic == RECORD_MAGIC and pos + at + need <= hwm:
                if at + need > limit:
                    break  # continues past this read: read again from here
                body = data[at + _HEAD : at + _HEAD + n]
                if _record_crc(n, body) == crc:
                    records.append(Record(pos + at, pos + at + need, body))
                    at += need
                    continue
                if _intact_at(fd, pos + at + need, hwm):  # only the body is damaged: set this record aside
                    bad = data[at : at + need]
                    quarantined.append((pos + at, bad, "corrupt record (checksum mismatch)"))
                    log.warning("quarantined a corrupt record at offset %d of spool segment %s", pos + at, path.name)
                    at += need
                    continue
            corrupt = True
            break
        pos += at
        if corrupt:
            # Bit rot, or a header that does not match its body. Its length cannot be trusted and nothing is
            # searched for: everything up to the high-water mark (always a record boundary) goes aside.
            bad = os.pread(fd, hwm - pos, pos)
            quarantined.append((pos, bad, "corrupt record (checksum or header mismatch)"))
            log.warning("quarantined %d corrupt bytes at offset %d of spool segment %s", len(bad), pos, path.name)
            pos = hwm
    if live or pos < hwm:
        return SegmentScan(records, pos, quarantined)
    # The writer is gone: pick up records committed after its last published mark, then a possible torn tail.
    while pos + _HEAD <= size and len(records) < max_records:
        magic, n, crc, _ = _REC.unpack_from(os.pread(fd, _HEAD, pos))
        need = (_HEAD + n + 7) & ~7
        if magic != RECORD_MAGIC or pos + need > size:
            break
        body = os.pread(fd, n, pos + _HEAD)
        if _record_crc(n, body) != crc:
            break
        records.append(Record(pos, pos + need, body))
        pos += need
    if len(records) >= max_records and pos + _HEAD <= size:
        return SegmentScan(records, pos, quarantined)
    tail = os.pread(fd, size - pos, pos) if pos < size else b""
    stripped = tail.rstrip(b"\0")
    if stripped:
        quarantined.append((pos, stripped, "torn record left by a writer that died mid-append"))
        log.warning("quarantined %d torn bytes at offset %d of spool segment %s", len(stripped), pos, path.name)
    return SegmentScan(records, size, quarantined, complete=True)


def _intact_at(fd: int, pos: int, hwm: int) -> bool:
    """Whether a damaged record's length can be trusted: it leads exactly to the mark or to a good record."""
    if pos == hwm:
        return True
    if pos + _HEAD > hwm:
        return False
    magic, n, crc, _ = _REC.unpack(os.pread(fd, _HEAD, pos))
    if magic != RECORD_MAGIC or pos + ((_HEAD + n + 7) & ~7) > hwm:
        return False
    return _record_crc(n, os.pread(fd, n, pos + _HEAD)) == crc


@contextmanager
def ingest_lock(directory: Path, *, wait: bool = True, timeout: float | None = None) -> Iterator[bool]:
    """The spool's single-ingester lock (``.ingest.lock``); yields whether it was taken.

    ``timeout`` bounds the wait (polling), so a close path never hangs behind a stuck ingester.
    """
    path = Path(directory) / ".ingest.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise SpoolError(f"cannot open spool lock {path}: {exc.strerror}") from exc
    try:
        taken = _take(fd, wait=wait, timeout=timeout)
        yield taken
    finally:
        os.close(fd)


def _take(fd: int, *, wait: bool, timeout: float | None) -> bool:
    if wait and timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    deadline = time.monotonic() + (timeout or 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not wait or time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def erase_consumed(path: Path, end: int) -> int:
    """Zero-fill a segment's consumed records ``[64, end)`` and advance its base; returns bytes erased.

    ``end`` must be the segment's committed ingest offset (a record boundary). Hold ``ingest_lock``.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        header = read_header(fd)
        if header is None:
            return 0
        start = max(header.base, DATA_START)
        end = min(end, max(header.hwm, start))
        if end <= start:
            return 0
        at = start
        zeros = bytes(min(end - start, 1 << 20))
        while at < end:
            at += os.pwrite(fd, zeros[: end - at], at)
        os.pwrite(fd, _HWM.pack(end), _BASE_AT)
        os.fsync(fd)
        return end - start
    finally:
        os.close(fd)


def iter_payloads(directory: Path) -> Iterator[bytes]:
    """Every intact payload in the spool (for inspection and tests)."""
    for path in list_segments(directory):
        yield from (r.payload for r in scan_segment(path, 0, live=False, max_records=1 << 60).records)


def no_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
