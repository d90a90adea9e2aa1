"""Trace rows: idempotent bulk insert (ingest), look-up by id or provider response id, listing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Table, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..errors import NotFoundError
from ..models import Trace, utcnow
from .schema import spool_offsets, traces
from .types import JSONText, UTCDateTime, sqlite_time

__all__ = [
    "count_traces", "delete_offset", "get_trace", "insert_ignore", "insert_traces", "list_traces", "load_offsets",
    "resolve_trace_id", "row_to_trace", "save_offset",
]

_JSON_DEFAULTS = {"params": {}, "input": [], "tags": [], "metadata": {}}


def insert_ignore(conn: Connection, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in this connection's dialect."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    return insert(table).on_conflict_do_nothing()


_COLUMNS = [c.name for c in traces.columns]
_JSON_COLUMNS = frozenset(c.name for c in traces.columns if isinstance(c.type, JSONText))
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO traces ({', '.join(chr(34) + c + chr(34) for c in _COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


_JSON_INDEXES = [i for i, c in enumerate(_COLUMNS) if c in _JSON_COLUMNS]
_TIME_INDEXES = [i for i, c in enumerate(traces.columns) if isinstance(c.type, UTCDateTime)]
_dumps = orjson.dumps
_JSON_OPTS = orjson.OPT_NON_STR_KEYS


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


def insert_traces(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert trace rows; rows whose id is already stored are skipped (re-ingest is harmless).

    On SQLite the rows go straight to the driver's executemany (same encoding as the column types):
    ingest is the one bulk path where SQLAlchemy's per-row bind processing is most of the cost.
    """
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            _SQLITE_INSERT, [_sqlite_tuple(row) for row in rows]
        )
    else:
        conn.execute(insert_ignore(conn, traces), list(rows))


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
