"""All-or-nothing writes: a reader sees the old file or the whole new one, never a partial file.

Every golden-set file and every export goes through here. The pattern is the usual one: write a
temporary file in the *same directory* (so the final rename never crosses a file system), flush
and ``fsync`` it, ``os.replace`` it over the target, then ``fsync`` the directory so the rename
itself survives a crash. Any failure removes the temporary file and raises ``ExportError`` (or
lets the caller's own exception through) with the target path named.

Modes: files are 0600 and directories 0700, whatever the umask. Golden sets and exports hold user
text (redacted, but still a user's words), so only their owner reads them unless someone decides
otherwise (``chmod``, or a git checkout, which applies the umask). Chosen over honouring the umask
because the common umask 022 would make them world-readable (issue 16 item 13).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from workbench.errors import ExportError, WorkbenchError

__all__ = ["DIR_MODE", "FILE_MODE", "atomic_dir", "atomic_write", "atomic_write_bytes", "sha256_file", "sha256_tree"]

_TMP_PREFIX = ".wbtmp-"
FILE_MODE = 0o600
DIR_MODE = 0o700


def _fsync_dir(directory: Path) -> None:
    """Persist a rename; not possible on every platform (Windows), so best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_parent(path: Path, error: type[WorkbenchError]) -> Path:
    parent = path.parent
    if not parent.exists():
        raise error(f"cannot write {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise error(f"cannot write {path}: {parent} is not a directory")
    return parent


@contextlib.contextmanager
def atomic_write(
    path: str | Path, *, text: bool = False, error: type[WorkbenchError] = ExportError
) -> Iterator[IO[Any]]:
    """Yield a file handle; on a clean exit its content replaces ``path`` in one rename.

    ``text=True`` gives a UTF-8 text handle with ``newline=""`` (the csv module wants that).
    OS errors become ``error`` naming the path; the caller's own exceptions pass through. In both
    cases the temporary file is removed and an existing ``path`` is left untouched.
    """
    target = Path(path)
    parent = _check_parent(target, error)
    if target.is_dir():
        raise error(f"cannot write {target}: it is a directory")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX + target.name + ".", dir=parent)
    except OSError as exc:
        raise error(f"cannot write {target}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        try:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline="") if text else os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600 already; said here so it stays so
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise error(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(parent)


def atomic_write_bytes(path: str | Path, data: bytes, *, error: type[WorkbenchError] = ExportError) -> str:
    """Write ``data`` atomically and return its sha256 hex digest."""
    with atomic_write(path, error=error) as handle:
        handle.write(data)  # type: ignore[arg-type]
    return hashlib.sha256(data).hexdigest()


def atomic_dir(
    path: str | Path,
    fill: Callable[[Path], None],
    *,
    replaceable: Callable[[Path], bool] = lambda _p: False,
    error: type[WorkbenchError] = ExportError,
) -> None:
    """Build a directory with ``fill(tmp_dir)`` and move it to ``path`` in one rename.

    An existing ``path`` is replaced only if ``replaceable(path)`` says it is ours to replace (an
    earlier export of the same kind); it is moved aside first and removed after the new directory
    is in place, so a failure at any point leaves either the old or the new directory whole.
    """
    target = Path(path)
    parent = _check_parent(target, error)
    if target.exists() and not (target.is_dir() and replaceable(target)):
        raise error(f"cannot write {target}: it exists and is not an earlier export of this kind")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + target.name + ".", dir=parent))
    except OSError as exc:
        raise error(f"cannot write {target}: {exc.strerror or exc}") from exc
    old: Path | None = None
    try:
        fill(tmp)
        _restrict_tree(tmp)  # whatever ``fill`` wrote (a library's own files) gets our modes too
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + target.name + ".old.", dir=parent))
            os.replace(target, old / "d")
        os.replace(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "d").exists() and not target.exists():
            os.replace(old / "d", target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, OSError):
            raise error(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(parent)


def _restrict_tree(root: Path) -> None:
    os.chmod(root, DIR_MODE)
    for path in root.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(path: str | Path) -> str:
    """One hash for a directory: sha256 over sorted ``relative-path NUL file-sha256`` lines."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        digest.update(f"{rel}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()
