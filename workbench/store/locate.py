"""Where the store is: --store / WORKBENCH_URL, else a ``.workbench/`` found from the current directory.

Like git finding ``.git``: walking up from the working directory means `workbench` run anywhere inside
a project uses that project's store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_DIRNAME", "StoreLocation", "find_home", "locate"]

DEFAULT_DIRNAME = ".workbench"
DB_NAME = "workbench.db"


@dataclass(frozen=True)
class StoreLocation:
    url: str  # SQLAlchemy URL
    home: Path  # directory for the spool and other side files
    display: str  # what to show a user (no password)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


def find_home(start: Path) -> Path | None:
    """The nearest ``.workbench/`` at or above ``start`` (None if there is none)."""
    for folder in (start, *start.parents):
        candidate = folder / DEFAULT_DIRNAME
        if candidate.is_dir():
            return candidate
    return None


def _sqlite(path: Path) -> StoreLocation:
    path = path.expanduser().absolute()
    return StoreLocation(url=f"sqlite:///{path}", home=path.parent, display=str(path))


def locate(url: str | os.PathLike[str] | None = None, *, cwd: Path | None = None) -> StoreLocation:
    """Resolve a store from an explicit URL or path, WORKBENCH_URL, or the project directory."""
    cwd = cwd or Path.cwd()
    raw = os.fspath(url) if url is not None else os.environ.get("WORKBENCH_URL") or None
    if raw is None:
        home = find_home(cwd) or cwd / DEFAULT_DIRNAME
        return _sqlite(home / DB_NAME)
    if "://" not in raw:
        path = Path(raw)
        if path.is_dir() or not path.suffix:
            path = path / DB_NAME if path.name == DEFAULT_DIRNAME else path / DEFAULT_DIRNAME / DB_NAME
        return _sqlite(path)
    if raw.startswith("sqlite:///"):
        return _sqlite(Path(raw.removeprefix("sqlite:///")))
    spool_home = os.environ.get("WORKBENCH_HOME")
    home = Path(spool_home) if spool_home else (find_home(cwd) or cwd / DEFAULT_DIRNAME)
    display = raw
    if "@" in raw and ":" in raw.split("://", 1)[1].split("@", 1)[0]:
        scheme, rest = raw.split("://", 1)
        creds, host = rest.split("@", 1)
        display = f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return StoreLocation(url=raw, home=home.absolute(), display=display)
