"""Append-only spool: the capture hot path's only I/O.

A segment is a file of frames ``@wb <len> <crc32>\\n<payload>\\n``. The writer maps its segment
(``MAP_SHARED``, pre-sized and sparse) and copies each frame into the mapping: the bytes are then in
the OS page cache, so they survive the app being killed, without a system call per record (a
``write()`` costs ~10 us on a small VM, the copy well under one). Unwritten space reads as zeros,
which is where a reader stops. The writer holds a shared ``flock`` on its open segment while it lives:
an ingester that can take an exclusive lock knows the writer is gone (closed, crashed or killed) and
may treat a torn tail as torn rather than "still being written". Sealing a segment truncates it to its
data, fsyncs (by policy) and renames it.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpoolError
from ..ids import new_id

__all__ = [
    "Frame", "SegmentScan", "SpoolWriter", "frame", "iter_payloads", "list_segments", "scan_segment",
    "segment_key", "writer_alive",
]

log = logging.getLogger("workbench.spool")

MAGIC = b"@wb "
OPEN_SUFFIX = ".open"
SEGMENT_SUFFIX = ".wbspool"
_MAX_HEADER = 40
_READ_BYTES = 16 << 20


def frame(payload: bytes) -> bytes:
    return b"%s%d %08x\n%s\n" % (MAGIC, len(payload), zlib.crc32(payload), payload)


class SpoolWriter:
    """Appends framed records to this process's open segment; rotates by size."""

    def __init__(self, directory: Path, *, max_segment_bytes: int = 64 << 20, fsync: str = "rotate") -> None:
        if fsync not in ("always", "rotate", "never"):
            raise SpoolError(f"fsync policy must be always, rotate or never, not {fsync!r}")
        self.directory = Path(directory)
        self.max_segment_bytes = max_segment_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd = -1
        self._path: Path | None = None
        self._size = 0
        self._capacity = 0
        self._map: mmap.mmap | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {self.directory}: {exc.strerror}") from exc
        os.register_at_fork(after_in_child=self._after_fork)

    def _open_segment(self, size: int) -> None:
        path = self.directory / f"{new_id()}-{os.getpid()}{SEGMENT_SUFFIX}{OPEN_SUFFIX}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.ftruncate(fd, size)
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            raise SpoolError(f"cannot open spool segment {path}: {exc.strerror}") from exc
        self._fd, self._path, self._size, self._capacity = fd, path, 0, size

    def append(self, payload: bytes) -> None:
        data = frame(payload)
        size = len(data)
        with self._lock:
            if self._size + size > self._capacity:
                self._close_segment()
            if self._fd < 0:
                self._open_segment(max(self.max_segment_bytes, size))
            end = self._size + size
            self._map[self._size:end] = data  # type: ignore[index]
            self._size = end
            if self.fsync == "always":
                self._map.flush()  # type: ignore[union-attr]

    def _close_segment(self) -> None:
        """Seal the open segment: cut it to its data, fsync, rename to its sealed name, unlock."""
        if self._fd < 0:
            return
        fd, path, used, mapping = self._fd, self._path, self._size, self._map
        self._fd, self._path, self._size, self._capacity, self._map = -1, None, 0, 0, None
        try:
            assert mapping is not None and path is not None
            if self.fsync != "never":
                mapping.flush()
            mapping.close()
            os.ftruncate(fd, used)
            if self.fsync != "never":
                os.fsync(fd)
            os.rename(path, path.with_name(path.name.removesuffix(OPEN_SUFFIX)))
        finally:
            os.close(fd)

    def flush(self) -> None:
        """Make everything appended so far durable (fsync) and visible as a closed segment."""
        with self._lock:
            self._close_segment()

    def close(self) -> None:
        self.flush()

    def _after_fork(self) -> None:
        # The child must not append to (or seal) the parent's segment: start fresh.
        self._lock = threading.Lock()
        if self._map is not None:
            self._map.close()
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._path, self._size, self._capacity, self._map = -1, None, 0, 0, None


def list_segments(directory: Path) -> list[Path]:
    """Closed and open segments, oldest first (names start with a time-ordered id)."""
    if not directory.is_dir():
        return []
    try:
        names = sorted(
            p for p in directory.iterdir()
            if p.name.endswith(SEGMENT_SUFFIX) or p.name.endswith(SEGMENT_SUFFIX + OPEN_SUFFIX)
        )
    except OSError as exc:
        raise SpoolError(f"cannot read spool directory {directory}: {exc.strerror}") from exc
    return names


def segment_key(path: Path) -> str:
    """Stable name of a segment whether open or sealed (the offset table is keyed by it)."""
    return path.name.removesuffix(OPEN_SUFFIX)


@dataclass(frozen=True)
class Frame:
    offset: int       # where the frame starts
    end: int          # where the next frame starts
    payload: bytes


@dataclass
class SegmentScan:
    frames: list[Frame]
    end: int                       # offset up to which everything was consumed (frames + quarantined)
    quarantined: list[tuple[int, bytes]]
    complete: bool                 # reached the end of a sealed segment


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


def scan_segment(path: Path, start: int, *, live: bool, max_frames: int = 10_000) -> SegmentScan:
    """Read frames from ``start``; quarantine corrupt ones; stop at an incomplete tail if ``live``."""
    limit = _READ_BYTES
    if not live:  # a dead writer's pre-sized tail is zeros to the end: read it whole to know it is done
        try:
            limit = max(limit, os.path.getsize(path) - start)
        except FileNotFoundError:
            return SegmentScan([], start, [], False)
    while True:
        try:
            with open(path, "rb") as handle:
                handle.seek(start)
                data = handle.read(limit)
                eof = not handle.read(1)
        except FileNotFoundError:  # renamed by its writer on rotation: found again under its new name
            return SegmentScan([], start, [], False)
        except OSError as exc:
            raise SpoolError(f"cannot read spool segment {path}: {exc.strerror}") from exc
        scan = _scan(path, data, start, live=live or not eof, max_frames=max_frames)
        unwritten = scan.end - start < len(data) and data[scan.end - start] == 0
        if scan.frames or scan.quarantined or eof or unwritten:
            scan.complete = scan.complete and eof
            return scan
        limit *= 4  # one frame larger than the read window


def _scan(path: Path, data: bytes, start: int, *, live: bool, max_frames: int) -> SegmentScan:
    frames: list[Frame] = []
    quarantined: list[tuple[int, bytes]] = []
    pos = 0
    size = len(data)
    while pos < size and len(frames) < max_frames:
        if data[pos] == 0:  # unwritten (pre-sized) space: the end of the data
            if live:
                break
            if data.count(0, pos) == size - pos:
                pos = size
                break
        parsed = _parse_frame(data, pos)
        if parsed is not None:
            length, payload_start = parsed
            end = payload_start + length + 1
            if end <= size:
                payload = data[payload_start:payload_start + length]
                if data[end - 1:end] == b"\n" and _crc_ok(data, pos, payload):
                    frames.append(Frame(start + pos, start + end, payload))
                    pos = end
                    continue
            elif live:
                break  # still being written
        elif live and data.find(b"\n", pos) < 0:
            break  # header still being written
        # Corrupt or torn: quarantine up to the next frame start and carry on after it. In a live
        # segment the last frame may still be being copied in: wait for it rather than quarantine.
        nxt = data.find(b"\n" + MAGIC, pos + 1)
        if nxt < 0 and live:
            break
        zeros = data.find(b"\0", pos + 1)
        cut = size if nxt < 0 else nxt + 1
        if nxt < 0 and zeros >= 0 and data.count(0, zeros) == size - zeros:
            cut = zeros  # a torn last frame, then the dead writer's unwritten space
        quarantined.append((start + pos, data[pos:cut]))
        log.warning("quarantined %d corrupt bytes at offset %d of spool segment %s", cut - pos, start + pos,
                    path.name)
        pos = cut
    return SegmentScan(frames, start + pos, quarantined, complete=(not live and pos >= size))


def _parse_frame(data: bytes, pos: int) -> tuple[int, int] | None:
    if not data.startswith(MAGIC, pos):
        return None
    newline = data.find(b"\n", pos, pos + _MAX_HEADER)
    if newline < 0:
        return None
    parts = data[pos + len(MAGIC):newline].split(b" ")
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) != 8:
        return None
    return int(parts[0]), newline + 1


def _crc_ok(data: bytes, pos: int, payload: bytes) -> bool:
    newline = data.find(b"\n", pos)
    try:
        expected = int(data[newline - 8:newline], 16)
    except ValueError:
        return False
    return zlib.crc32(payload) == expected


def iter_payloads(directory: Path) -> Iterator[bytes]:
    """Every intact payload in the spool (for inspection and tests)."""
    for path in list_segments(directory):
        yield from (f.payload for f in scan_segment(path, 0, live=False, max_frames=1 << 60).frames)
