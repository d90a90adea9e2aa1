"""What every command shares: finding the store, JSON output, tables, time parsing.

Every ``workbench`` invocation imports this module and every command module, so nothing here (or at the
top of a command module) may import SQLAlchemy, numpy, scipy, the exporters or textual: commands import
what they use inside their function. tests/test_cli_startup.py holds the line.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ..errors import NotFoundError, ValidationError
from ..store.locate import find_home

if TYPE_CHECKING:
    from ..store import Store

__all__ = [
    "CliState",
    "console",
    "err_console",
    "get_store",
    "parse_duration",
    "parse_since",
    "print_json",
    "require_project_store",
    "startup_done",
    "table",
]

console = Console()
err_console = Console(stderr=True)


class CliState:
    """Per-invocation options from the root callback (``--store``)."""

    def __init__(self, store_url: str | None) -> None:
        self.store_url = store_url
        self._store: Store | None = None

    def store(self) -> Store:
        """The existing store (never creates one: a mistyped --store is exit 4, see `workbench init`)."""
        if self._store is None:
            from ..store import open_store

            require_project_store(self.store_url)
            self._store = open_store(self.store_url, create=False)
            startup_done()
        return self._store


def startup_done() -> None:
    """Turn the cyclic garbage collector back on. ``main()`` pauses it while the CLI, the store and the
    command's libraries import: tens of thousands of long-lived objects, whose collections cost ~50 ms
    and free nothing. Every command that can run long gets here through ``get_store()``; one that opens
    no store but runs long (the demo) calls it itself."""
    gc.enable()


def require_project_store(store_url: str | None) -> None:
    """Like git outside a repository: with no --store / WORKBENCH_URL and no .workbench/ here or above, say
    so instead of quietly creating an empty store in whatever directory the command ran from."""
    if store_url is None and not os.environ.get("WORKBENCH_URL") and find_home(Path.cwd()) is None:
        raise NotFoundError(
            f"no workbench store in {Path.cwd()} or above (no .workbench/); run `workbench init` or "
            "`workbench demo`, call workbench.open() in your app, or pass --store / WORKBENCH_URL"
        )


def get_store(ctx: typer.Context) -> Store:
    root = ctx.find_root()
    state = root.obj if isinstance(root.obj, CliState) else CliState(None)
    root.obj = state
    return state.store()


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def print_json(data: Any) -> None:
    """Machine-readable output for scripts (one JSON document on stdout)."""
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    sys.stdout.write(orjson.dumps(data, default=_default, option=options).decode())
    sys.stdout.write("\n")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    out = Table(title=title, header_style="bold", show_lines=False)
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    return out


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``1h``, ``7d``, ``2w`` -> timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValidationError(f"bad duration {text!r}; use a number and a unit: 30m, 1h, 7d, 2w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_since(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """A relative duration (``1h``, ``7d``) back from now, or an ISO date/time."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    if _DURATION.match(text):
        return now - parse_duration(text)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"bad time {text!r}; use a duration like 1h or 7d, or an ISO date like 2026-11-01"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def age(value: datetime, *, now: datetime | None = None) -> str:
    seconds = max(0.0, ((now or datetime.now(UTC)) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
