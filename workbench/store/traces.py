"""Trace rows: idempotent bulk insert (ingest), look-up by id or provider response id, listing."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Table, func, or_, select

from ..errors import NotFoundError, StoreUnavailableError
from ..models import Trace, utcnow
from .engine import dialect_insert
from .schema import spool_offsets, traces
from .types import JSONText, UTCDateTime, sqlite_time

__all__ = [
    "check_trace_row",
    "count_traces",
    "delete_offset",
    "drop_secondary_indexes",
    "encode_trace_row",
    "encode_trace_values",
    "get_trace",
    "insert_ignore",
    "insert_traces",
    "list_traces",
    "load_offsets",
    "resolve_trace_id",
    "restore_indexes",
    "row_to_trace",
    "save_offset",
    "sqlite_row_estimate",
]

_JSON_DEFAULTS: dict[str, Any] = {"params": {}, "input": [], "tags": [], "metadata": {}}


def insert_ignore(conn: Connection, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in this connection's dialect."""
    insert = dialect_insert(conn.dialect.name)
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


_STR, _INT, _FLOAT, _JSON, _TIME, _OTHER = range(6)


def _column_specs() -> list[tuple[str, int, int | None, bool]]:
    specs = []
    for column in traces.columns:
        kind = type(column.type).__name__
        code = {
            "String": _STR,
            "Text": _STR,
            "Integer": _INT,
            "Float": _FLOAT,
            "JSONText": _JSON,
            "UTCDateTime": _TIME,
        }.get(kind, _OTHER)
        specs.append((column.name, code, getattr(column.type, "length", None), bool(column.nullable)))
    return specs


_SPECS = _column_specs()


class RowRefused(ValueError):
    """A trace row the store would refuse; the message says which column and why."""


_NOT_NULL = [i for i, (_, _, _, nullable) in enumerate(_SPECS) if not nullable]
_STR_AT = [(i, length or 0) for i, (_, code, length, _) in enumerate(_SPECS) if code == _STR]
_INT_AT = [i for i, (_, code, _, _) in enumerate(_SPECS) if code == _INT]
_FLOAT_AT = [i for i, (_, code, _, _) in enumerate(_SPECS) if code == _FLOAT]
_JSON_AT = [i for i, (_, code, _, _) in enumerate(_SPECS) if code == _JSON]
_TIME_AT = [i for i, (_, code, _, _) in enumerate(_SPECS) if code == _TIME]
_LOW, _HIGH = _INT_RANGE
_ITEMS = operator.itemgetter(*_COLUMNS)
_SECONDS: dict[int, str] = {}


def _sqlite_time_fast(value: datetime) -> str:
    """sqlite_time for ingest's hot loop: the text of each whole second is made once (a batch shares few)."""
    if value.tzinfo is not UTC:
        return sqlite_time(value)
    stamp = value.timestamp()
    second = int(stamp // 1)
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        prefix = _SECONDS[second] = value.replace(tzinfo=None, microsecond=0).isoformat(" ")
    return f"{prefix}.{value.microsecond:06d}"


def encode_trace_row(row: Mapping[str, Any], dialect: str) -> tuple[Any, ...]:
    """One row as driver values (JSON text; SQLite: naive UTC text), checked on the way.

    Raises RowRefused naming the column (``"user_id: 201 characters, at most 200"``): checked before
    insert, in the same pass that encodes the row, so one bad row is set aside and the rest of its batch
    commits, alike on SQLite and PostgreSQL (lengths, NUL characters, integer range, JSON). The checks
    run per column group over one list (ingest's hot loop); the message comes from the slow path.
    """
    try:
        values = list(_ITEMS(row))
    except KeyError:  # a row that leaves optional columns out
        get = row.get
        values = [get(c) for c in _COLUMNS]
    return _encode(values, row, dialect)


def encode_trace_values(values: Sequence[Any], dialect: str) -> tuple[Any, ...]:
    """encode_trace_row for a row already laid out in the traces table's column order (ingest's fast path:
    no mapping built per row). Same checks, same RowRefused."""
    return _encode(list(values), values, dialect)


def _encode(values: list[Any], original: Mapping[str, Any] | Sequence[Any], dialect: str) -> tuple[Any, ...]:
    """Check and encode ``values`` in place (a list of its own; ``original`` is left as it is)."""
    try:
        if len(values[0]) != 26:
            raise RowRefused
        for i in _NOT_NULL:
            if values[i] is None:
                raise RowRefused
        for i, length in _STR_AT:
            v = values[i]
            if v is not None and (type(v) is not str or (length and len(v) > length) or "\x00" in v):
                raise RowRefused
        for i in _INT_AT:
            v = values[i]
            if v is not None and (type(v) is not int or not _LOW <= v < _HIGH):
                raise RowRefused
        for i in _FLOAT_AT:
            v = values[i]
            if v is not None and type(v) is not float and (type(v) is not int):
                raise RowRefused
        for i in _JSON_AT:
            v = values[i]
            if v is not None:
                v = _dumps(v, option=_JSON_OPTS)
                if len(v) > _MAX_JSON_BYTES:
                    raise RowRefused
                values[i] = v.decode()
        if dialect == "sqlite":
            for i in _TIME_AT:
                v = values[i]
                if v is not None:
                    values[i] = _sqlite_time_fast(v)
    except (RowRefused, TypeError, orjson.JSONEncodeError):
        _explain(original if isinstance(original, Mapping) else dict(zip(_COLUMNS, original, strict=True)), dialect)
    return tuple(values)


def _explain(row: Mapping[str, Any], dialect: str) -> None:
    """Raise RowRefused with the reason (the slow path of encode_trace_row)."""
    _encode_checked(row, dialect)
    raise RowRefused("row refused")  # pragma: no cover - the fast and slow checks agree


def _encode_checked(row: Mapping[str, Any], dialect: str) -> tuple[Any, ...]:
    """One row as driver values (JSON text; SQLite: naive UTC text), checked on the way.

    Raises RowRefused naming the column (``"user_id: 201 characters, at most 200"``): checked before
    insert, in the same pass that encodes the row, so one bad row is set aside and the rest of its batch
    commits, alike on SQLite and PostgreSQL (lengths, NUL characters, integer range, JSON).
    """
    sqlite = dialect == "sqlite"
    values: list[Any] = []
    append = values.append
    for name, code, length, nullable in _SPECS:
        value = row.get(name)
        if value is None:
            if not nullable:
                raise RowRefused(f"{name}: missing")
        elif code == _STR:
            if type(value) is not str:
                raise RowRefused(f"{name}: expected text, got {type(value).__name__}")
            if length is not None and len(value) > length:
                raise RowRefused(f"{name}: {len(value)} characters, at most {length}")
            if "\x00" in value:
                raise RowRefused(f"{name}: contains a NUL character")
        elif code == _JSON:
            try:
                value = _dumps(value, option=_JSON_OPTS)
            except (TypeError, orjson.JSONEncodeError) as exc:
                raise RowRefused(f"{name}: cannot be stored as JSON ({exc})") from None
            if len(value) > _MAX_JSON_BYTES:
                raise RowRefused(f"{name}: {len(value):,} bytes of JSON, at most {_MAX_JSON_BYTES:,}")
            value = value.decode()
        elif code == _INT:
            if type(value) is not int and not isinstance(value, int):
                raise RowRefused(f"{name}: expected an integer, got {type(value).__name__}")
            if not _INT_RANGE[0] <= value < _INT_RANGE[1]:
                raise RowRefused(f"{name}: {value} is out of the 32-bit integer range")
        elif code == _FLOAT:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise RowRefused(f"{name}: expected a number, got {type(value).__name__}")
        elif code == _TIME and sqlite:
            value = sqlite_time(value)
        append(value)
    if len(values[0]) != 26:
        raise RowRefused(f"id: {values[0]!r} is not a 26-character workbench id")
    return tuple(values)


def check_trace_row(row: Mapping[str, Any]) -> str | None:
    """Why the store would refuse this row, or None (see encode_trace_row)."""
    try:
        encode_trace_row(row, "postgresql")
    except RowRefused as exc:
        return str(exc)
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


def insert_traces(
    conn: Connection, rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]]
) -> list[tuple[int, str]]:
    """Insert trace rows; rows whose id is already stored are skipped (re-ingest is harmless).

    ``rows`` are mappings, or tuples from encode_trace_row (ingest: encoded and checked in one pass).
    Returns the rows the database refused anyway (index into ``rows``, reason): the batch is retried row
    by row under savepoints so that one such row never holds back the others. SQLite rows go straight to
    the driver's executemany; PostgreSQL rows are COPYed straight into the table, or, when one of them is
    stored already, into a temporary table and moved with one ``INSERT ... SELECT ... ON CONFLICT DO
    NOTHING`` (2-3x cheaper than a multi-row INSERT).
    """
    if not rows:
        return []
    if isinstance(rows[0], tuple):
        encoded: Sequence[tuple[Any, ...]] = rows  # type: ignore[assignment]
    else:
        encode = _sqlite_tuple if conn.dialect.name == "sqlite" else _pg_tuple
        encoded = [encode(row) for row in rows]  # type: ignore[arg-type]
    try:
        with conn.begin_nested():
            _insert_batch(conn, encoded)
        return []
    except Exception as exc:
        if not _row_level(exc):
            raise
    refused = []
    for index, row in enumerate(encoded):
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


def _insert_batch(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    if conn.dialect.name == "sqlite":
        # The driver's own executemany on its prepared statement: no SQLAlchemy statement handling per batch.
        with _driver_cursor(conn) as cursor:
            cursor.executemany(_SQLITE_INSERT, rows)
        return
    if conn.dialect.driver != "psycopg":
        conn.execute(insert_ignore(conn, traces), [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
        return
    import psycopg

    with _driver_cursor(conn) as cursor:
        # Optimistic: COPY straight into traces (the server writes each row once). A trace stored before
        # (re-ingest after a lost offset) fails the whole COPY on the primary key; then, and only then, the
        # batch goes through a staging table and INSERT ... ON CONFLICT DO NOTHING.
        cursor.execute("SAVEPOINT wb_copy")
        try:
            with cursor.copy(f"COPY traces ({_QUOTED}) FROM STDIN") as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT wb_copy")
        else:
            cursor.execute("RELEASE SAVEPOINT wb_copy")
            return
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_PG_STAGE} (LIKE traces INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {_PG_STAGE}")
        with cursor.copy(f"COPY {_PG_STAGE} ({_QUOTED}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row)
        cursor.execute(f"INSERT INTO traces ({_QUOTED}) SELECT {_QUOTED} FROM {_PG_STAGE} ON CONFLICT (id) DO NOTHING")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


_SAVE_OFFSET = (
    'INSERT INTO spool_offsets (segment, "offset", updated_at) VALUES ({0}, {0}, {0}) '
    'ON CONFLICT (segment) DO UPDATE SET "offset" = excluded."offset", updated_at = excluded.updated_at'
)
_LOAD_OFFSETS = 'SELECT segment, "offset" FROM spool_offsets'


def _placeholder(conn: Connection) -> str | None:
    """The parameter mark of the drivers ingest talks to directly (SQLite, psycopg); None for any other."""
    if conn.dialect.name == "sqlite":
        return "?"
    return "%s" if conn.dialect.driver == "psycopg" else None


@contextmanager
def _driver_cursor(conn: Connection) -> Iterator[Any]:
    """The DBAPI cursor under ``conn``, for the statements ingest sends past SQLAlchemy. A driver error that is
    the store's state, not the statement's (locked, read-only, disk full, connection lost), comes out as
    StoreUnavailableError, as it does through Store; any other (a bad row) is raised as the driver raised it."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except Exception as exc:
        if any(kind.__name__ in ("OperationalError", "InterfaceError") for kind in type(exc).__mro__):
            raise StoreUnavailableError(f"store is unavailable: {_first_line(exc)}") from exc
        raise
    finally:
        cursor.close()


def save_offset(conn: Connection, segment: str, offset: int) -> None:
    """Record how far a spool segment has been ingested, in the same transaction as its rows.

    Straight to the driver (each ingest pass runs it; SQLAlchemy's statement handling was ~130 us of it)."""
    mark = _placeholder(conn)
    if mark is None:
        stmt = dialect_insert(conn.dialect.name)(spool_offsets).values(
            segment=segment, offset=offset, updated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["segment"], set_={"offset": stmt.excluded.offset, "updated_at": stmt.excluded.updated_at}
        )
        conn.execute(stmt)
        return
    now = utcnow()
    with _driver_cursor(conn) as cursor:
        cursor.execute(
            _SAVE_OFFSET.format(mark), (segment, offset, sqlite_time(now) if conn.dialect.name == "sqlite" else now)
        )


def load_offsets(conn: Connection, segments: Iterable[str] | None = None) -> dict[str, int]:
    if _placeholder(conn) is None:
        query = select(spool_offsets.c.segment, spool_offsets.c.offset)
        if segments is not None:
            query = query.where(spool_offsets.c.segment.in_(list(segments)))
        return {row.segment: row.offset for row in conn.execute(query)}
    with _driver_cursor(conn) as cursor:  # a small table (a row per segment being ingested): read whole
        cursor.execute(_LOAD_OFFSETS)
        found = dict(cursor.fetchall())
    if segments is None:
        return found
    return {key: found[key] for key in segments if key in found}


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


def sqlite_row_estimate(conn: Connection) -> int:
    """About how many traces a SQLite store holds, in O(log n): the highest rowid (purged rows still count)."""
    return int(conn.exec_driver_sql("SELECT coalesce(max(rowid), 0) FROM traces").scalar_one())


def drop_secondary_indexes(conn: Connection) -> list[str]:
    """SQLite: drop the traces table's secondary indexes; returns their exact definitions for restore_indexes.

    For a large ingest backlog (see ``workbench.capture.ingest``): inserting without them and building them
    once afterwards (a sort) costs less than maintaining five B-trees row by row. Call both inside one
    transaction: readers keep their snapshot with the indexes, and a crash rolls the drop back too. The
    primary key (the idempotence check) stays.
    """
    found = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'traces' AND sql IS NOT NULL"
    ).all()
    for name, _ in found:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _, sql in found]


def restore_indexes(conn: Connection, definitions: Sequence[str]) -> None:
    """Re-create indexes dropped by drop_secondary_indexes, in the same transaction."""
    for sql in definitions:
        conn.exec_driver_sql(sql)
