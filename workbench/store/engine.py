"""The Store: one SQLAlchemy engine (SQLite in WAL mode, or PostgreSQL) with migrations applied."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from ..errors import ConfigError, NotFoundError, StoreUnavailableError
from .locate import DEFAULT_DIRNAME, StoreLocation, locate
from .migrations import applied, migrate

__all__ = ["Store", "dialect_insert", "open_store"]


def _busy_ms() -> int:
    """How long SQLite waits for a lock before the store counts as unavailable (WORKBENCH_SQLITE_BUSY_MS)."""
    return int(os.environ.get("WORKBENCH_SQLITE_BUSY_MS", "10000"))


def _sqlite_engine(url: str) -> Engine:
    busy = _busy_ms()
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start (pysqlite's own is wrong for DDL).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-16384")  # 16 MiB (default 2): bulk ingest touches 6 B-trees per row
        cursor.execute(f"PRAGMA busy_timeout={busy}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front so they wait on busy_timeout instead of failing mid-way.
        immediate = conn.get_execution_options().get("wb_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def dialect_insert(dialect: str) -> Any:
    """The dialect's ``insert`` (the one with ``on_conflict_do_nothing``), imported on first use: a SQLite
    process never loads the PostgreSQL dialect, ~25 ms of every CLI start-up."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    return insert


class Store:
    """A migrated store. Domain code talks to it through the query modules in ``workbench.store``."""

    def __init__(self, location: StoreLocation, engine: Engine) -> None:
        self.location = location
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def home(self) -> Path:
        return self.location.home

    def __repr__(self) -> str:
        return f"Store({self.location.display})"

    @contextmanager
    def write(self, *, durable: bool = False) -> Iterator[Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE), committed on success.

        ``durable``: the commit is on disk when this returns, even on SQLite (which otherwise runs
        ``synchronous=NORMAL``: fast, crash-safe, but the last commits may be lost on power loss). Ingest
        uses it before deleting a spool segment, the only other copy of its rows.
        """
        with _translate(self), self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection if durable and self.dialect == "sqlite" else None
            if raw is not None:
                raw.execute("PRAGMA synchronous=FULL")
            try:
                conn = conn.execution_options(wb_write=True)
                with conn.begin():
                    yield conn
            finally:
                if raw is not None:
                    raw.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with _translate(self), self.engine.connect() as conn, conn.begin():
            yield conn

    def insert_ignore(self, table: Table) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING for this dialect (idempotent ingest)."""
        return dialect_insert(self.dialect)(table).on_conflict_do_nothing()

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def _translate(store: Store) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailableError(
            f"store {store.location.display} is unavailable: {_first_line(exc.orig or exc)}"
        ) from exc


def _init_hint(location: StoreLocation) -> str:
    return f"check --store / WORKBENCH_URL, or create it with `workbench --store {location.display} init`"


_MISSING_DATABASE = re.compile(r'database "[^"]*" does not exist')


def _new_in_project(location: StoreLocation) -> bool:
    """A SQLite file not written yet inside an existing ``.workbench/`` folder (the project exists)."""
    path = Path(location.url.removeprefix("sqlite:///"))
    empty = not path.is_file() or path.stat().st_size == 0
    return empty and path.parent.name == DEFAULT_DIRNAME and path.parent.is_dir()


# Dead peers are noticed in seconds, not after the kernel's 15-minute retransmission timeout.
_PG_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}


def _create_private(path: Path) -> None:
    """The database file (and so its -wal/-shm, which SQLite creates with the same mode) as 0600, in a
    0700 directory when we create it: traces hold users' text."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            pass


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def open_store(url: str | os.PathLike[str] | None = None, *, migrate_schema: bool = True, create: bool = True) -> Store:
    """Open (creating if needed) and migrate the store named by url, WORKBENCH_URL or the project dir.

    ``create=False`` is for the CLI: a mistyped ``--store`` must not leave an empty store behind, so a
    SQLite file that is not there (outside an existing ``.workbench/``), a PostgreSQL database that does
    not exist, or one without workbench tables is a ``NotFoundError`` and nothing is written.
    """
    location = locate(url)
    # Only an existing project's `.workbench/` gets its database made when create=False.
    must_exist = not create and not (location.is_sqlite and _new_in_project(location))
    if must_exist and location.is_sqlite and not Path(location.url.removeprefix("sqlite:///")).is_file():
        raise NotFoundError(f"no workbench store at {location.display}; {_init_hint(location)}")
    try:
        if location.is_sqlite:
            _create_private(Path(location.url.removeprefix("sqlite:///")))
            engine = _sqlite_engine(location.url)
        else:
            engine = create_engine(location.url, pool_pre_ping=True, connect_args=_PG_CONNECT_ARGS)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError(f"bad store URL {location.display!r}: {_first_line(exc)}") from exc
    except OSError as exc:
        raise StoreUnavailableError(f"cannot create store at {location.display}: {exc.strerror}") from exc
    store = Store(location, engine)
    if migrate_schema:
        try:
            with store.write() as conn:
                if store.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(74657)"))
                if must_exist and not applied(conn):
                    raise NotFoundError(
                        f"no workbench store in {location.display} (no workbench tables); {_init_hint(location)}"
                    )
                migrate(conn, location.display)
        except (DBAPIError, StoreUnavailableError) as exc:
            engine.dispose()
            reason = exc if isinstance(exc, StoreUnavailableError) else (exc.orig or exc)
            missing = _MISSING_DATABASE.search(str(reason)) if must_exist else None
            if missing:
                raise NotFoundError(
                    f"no workbench store at {location.display}: {missing.group(0)}; check --store / WORKBENCH_URL"
                ) from exc
            if isinstance(exc, StoreUnavailableError):
                raise
            raise StoreUnavailableError(f"store {location.display} is unavailable: {_first_line(reason)}") from exc
        except BaseException:
            engine.dispose()
            raise
    return store
