"""Trace rows: idempotent bulk insert (ingest), look-up by id or provider response id, listing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Table, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..errors import NotFoundError, StoreUnavailableError
from ..models import Trace, utcnow
from .schema import spool_offsets, traces
from .types import JSONText, UTCDateTime, sqlite_time

__all__ = [
    "check_trace_row",
    "count_traces",
    "delete_offset",
    "get_trace",
    "insert_ignore",
    "insert_traces",
    "list_traces",
    "load_offsets",
    "resolve_trace_id",
    "row_to_trace",
    "save_offset",
]

_JSON_DEFAULTS = {"params": {}, "input": [], "tags": [], "metadata": {}}


def insert_ignore(conn: Connection, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in this connection's dialect."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    return insert(table).on_conflict_do_nothing()


_COLUMNS = [c.name for c in traces.columns]
_JSON_COLUMNS = frozenset(c.name for c in traces.columns if isinstance(c.type, JSONText))
_QUOTED = ", ".join(chr(34) + c + chr(34) for c in _COLUMNS)
_SQLITE_INSERT = (
    f"INSERT INTO traces ({_QUOTED}) VALUES ({', '.join('?' for _ in _COLUMNS)}) ON CONFLICT (id) DO NOTHING"
)
_PG_STAGE = "wb_ingest_traces"


_JSON_INDEXES = [i for i, c in enumerate(_COLUMNS) if c in _JSON_COLUMNS]
_TIME_INDEXES = [i for i, c in enumerate(traces.columns) if isinstance(c.type, UTCDateTime)]
_dumps = orjson.dumps
_JSON_OPTS = orjson.OPT_NON_STR_KEYS
_MAX_JSON_BYTES = 64 << 20
_INT_RANGE = (-(2**31), 2**31)  # PostgreSQL INTEGER; SQLite takes more, but a store must not depend on its dialect


def _column_checks() -> list[tuple[str, str, int | None, bool]]:
    checks = []
    for column in traces.columns:
        kind = type(column.type).__name__
        length = getattr(column.type, "length", None)
        checks.append((column.name, kind, length, bool(column.nullable)))
    return checks


_CHECKS = _column_checks()


def check_trace_row(row: Mapping[str, Any]) -> str | None:
    """Why the store would refuse this row (``"user_id: 201 characters, at most 200"``), or None.

    Checked before insert so that one bad row is set aside and the rest of its batch commits, the same
    way on SQLite and PostgreSQL (lengths, NUL characters, integer range, JSON that cannot be encoded).
    """
    for name, kind, length, nullable in _CHECKS:
        value = row.get(name)
        if value is None:
            if not nullable:
                return f"{name}: missing"
            continue
        if kind in ("String", "Text"):
            if not isinstance(value, str):
                return f"{name}: expected text, got {type(value).__name__}"
            if length is not None and len(value) > length:
                return f"{name}: {len(value)} characters, at most {length}"
            if "\x00" in value:
                return f"{name}: contains a NUL character"
        elif kind == "Integer":
            if not isinstance(value, int):
                return f"{name}: expected an integer, got {type(value).__name__}"
            if not _INT_RANGE[0] <= value < _INT_RANGE[1]:
                return f"{name}: {value} is out of the 32-bit integer range"
        elif kind == "Float":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return f"{name}: expected a number, got {type(value).__name__}"
        elif kind == "JSONText":
            try:
                text = _dumps(value, option=_JSON_OPTS)
            except (TypeError, orjson.JSONEncodeError) as exc:
                return f"{name}: cannot be stored as JSON ({exc})"
            if len(text) > _MAX_JSON_BYTES:
                return f"{name}: {len(text):,} bytes of JSON, at most {_MAX_JSON_BYTES:,}"
    if len(row["id"]) != 26:
        return f"id: {row['id']!r} is not a 26-character workbench id"
    return None


def _sqlite_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """One row encoded as the column types would encode it for SQLite (JSON text, naive UTC text)."""
    values = [row.get(c) for c in _COLUMNS]
    for i in _JSON_INDEXES:
        value = values[i]
        if value is not None:
            values[i] = _dumps(value, option=_JSON_OPTS).decode()
    for i in _TIME_INDEXES:
        value = values[i]
        if value is not None:
            values[i] = sqlite_time(value)
    return tuple(values)


def _pg_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    values = [row.get(c) for c in _COLUMNS]
    for i in _JSON_INDEXES:
        value = values[i]
        if value is not None:
            values[i] = _dumps(value, option=_JSON_OPTS).decode()
    return tuple(values)


def insert_traces(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """Insert trace rows; rows whose id is already stored are skipped (re-ingest is harmless).

    Returns the rows the database refused anyway (index into ``rows``, reason): the batch is retried row
    by row under savepoints so that one such row never holds back the others. SQLite rows go straight to
    the driver's executemany; PostgreSQL rows are COPYed into a temporary table and moved with one
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (2-3x cheaper than a multi-row INSERT).
    """
    if not rows:
        return []
    try:
        with conn.begin_nested():
            _insert_batch(conn, rows)
        return []
    except Exception as exc:
        if not _row_level(exc):
            raise
    refused = []
    for index, row in enumerate(rows):
        try:
            with conn.begin_nested():
                _insert_batch(conn, [row])
        except Exception as exc:
            if not _row_level(exc):
                raise
            orig = getattr(exc, "orig", None) or exc
            refused.append((index, f"{type(orig).__name__}: {_first_line(orig)}"))
    return refused


def _row_level(exc: BaseException) -> bool:
    """Errors one row causes (bad value); anything else (store down, locked, a bug) stops the batch."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, (OverflowError, ValueError, TypeError, UnicodeError)):
        return True
    return any(kind.__name__ in ("IntegrityError", "DataError") for kind in type(orig).__mro__)


def _insert_batch(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_INSERT, [_sqlite_tuple(row) for row in rows])
        return
    if conn.dialect.driver != "psycopg":
        conn.execute(insert_ignore(conn, traces), list(rows))
        return
    import psycopg

    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_PG_STAGE} (LIKE traces INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {_PG_STAGE}")
        with cursor.copy(f"COPY {_PG_STAGE} ({_QUOTED}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(_pg_tuple(row))
        cursor.execute(f"INSERT INTO traces ({_QUOTED}) SELECT {_QUOTED} FROM {_PG_STAGE} ON CONFLICT (id) DO NOTHING")
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise StoreUnavailableError(f"store is unavailable: {_first_line(exc)}") from exc
    finally:
        cursor.close()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def save_offset(conn: Connection, segment: str, offset: int) -> None:
    """Record how far a spool segment has been ingested, in the same transaction as its rows."""
    stmt = (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(spool_offsets).values(
        segment=segment, offset=offset, updated_at=utcnow()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["segment"], set_={"offset": stmt.excluded.offset, "updated_at": stmt.excluded.updated_at}
    )
    conn.execute(stmt)


def load_offsets(conn: Connection, segments: Iterable[str] | None = None) -> dict[str, int]:
    query = select(spool_offsets.c.segment, spool_offsets.c.offset)
    if segments is not None:
        query = query.where(spool_offsets.c.segment.in_(list(segments)))
    return {row.segment: row.offset for row in conn.execute(query)}


def row_to_trace(row: Any) -> Trace:
    data = dict(row._mapping)
    for key, default in _JSON_DEFAULTS.items():
        if data.get(key) is None:
            data[key] = default
    return Trace.model_validate(data)


def resolve_trace_id(conn: Connection, ref: str) -> str:
    """A trace id from a trace id or the provider's response id (e.g. ``chatcmpl-...``)."""
    row = conn.execute(
        select(traces.c.id)
        .where(or_(traces.c.id == ref, traces.c.provider_response_id == ref))
        .order_by(traces.c.id)
        .limit(1)
    ).first()
    if row is None:
        raise NotFoundError(f"no trace with id or response id {ref!r}")
    return row.id


def get_trace(conn: Connection, ref: str) -> Trace:
    trace_id = resolve_trace_id(conn, ref)
    row = conn.execute(select(traces).where(traces.c.id == trace_id)).one()
    return row_to_trace(row)


def list_traces(
    conn: Connection,
    *,
    prompt_name: str | None = None,
    prompt_version: int | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    since: datetime | None = None,
    limit: int | None = 50,
    newest_first: bool = True,
) -> list[Trace]:
    query = select(traces)
    if prompt_name is not None:
        query = query.where(traces.c.prompt_name == prompt_name)
    if prompt_version is not None:
        query = query.where(traces.c.prompt_version == prompt_version)
    if session_id is not None:
        query = query.where(traces.c.session_id == session_id)
    if user_id is not None:
        query = query.where(traces.c.user_id == user_id)
    if since is not None:
        query = query.where(traces.c.created_at >= since)
    query = query.order_by(traces.c.id.desc() if newest_first else traces.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [row_to_trace(row) for row in conn.execute(query)]


def count_traces(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(traces)).scalar_one())


def delete_offset(conn: Connection, segment: str) -> None:
    conn.execute(spool_offsets.delete().where(spool_offsets.c.segment == segment))
