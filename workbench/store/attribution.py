"""Attribution queries: per-configuration aggregates computed in SQL, the alert log, the prompt decision log.

Everything compare and watch need comes back as one row per (configuration, time bucket) with
COUNT / SUM / SUM of squares, so 10M traces never travel into Python. A configuration is the
tuple of columns named by ``by``:

- ``prompt_version``: (prompt_name, prompt_version)
- ``model_version``: (model_resolved or model_requested, system_fingerprint), so a silent provider
  update (same model name, new fingerprint) is a new configuration
- ``variant``: (variant,)
- ``all``: () - all traffic as one configuration

Votes and ratings also come with cluster sums (``GroupRow.clusters`` ...): votes on one answer, or in
one session, are correlated, so an inner ``GROUP BY`` per cluster (the trace's session, or the
trace itself when it has no session) feeds an outer one per configuration that returns the
cluster count and sum t_c^2, sum t_c n_c, sum n_c^2: all a cluster-robust variance needs, still
one row per configuration.

Time filters and buckets use the *trace's* ``created_at``: an outcome belongs to the moment the
configuration produced the answer, not to when the user got round to voting. Feedback and judge
scores are recorded after their trace, so a query from ``since`` only reads rows recorded from
``since - RECORD_SKEW`` on (the slack absorbs clock skew between hosts): watch over the last week
does not sort a year of votes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    Connection,
    Float,
    Integer,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    select,
)
from sqlalchemy.sql import ColumnElement, Select

from ..errors import ValidationError
from ..models import Alert, PromptEvent
from .schema import alerts, feedback, judge_scores, prompt_events, traces
from .types import sqlite_time

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "BY",
    "GroupRow",
    "JudgeRow",
    "PromptState",
    "config_fields",
    "count_traces",
    "example_trace_ids",
    "insert_alerts",
    "insert_prompt_event",
    "judge_groups",
    "list_alerts",
    "list_prompt_events",
    "mean_groups",
    "prompt_state",
    "rate_groups",
    "trace_inputs",
    "vote_groups",
]

BY = ("prompt_version", "model_version", "variant", "all")
RECORD_SKEW = timedelta(days=1)
_FIELDS = {
    "prompt_version": ("prompt_name", "prompt_version"),
    "model_version": ("model", "system_fingerprint"),
    "variant": ("variant",),
    "all": (),
}


def config_fields(by: str) -> tuple[str, ...]:
    """Names of the key fields of a configuration under ``by`` (the order of ``GroupRow.key``)."""
    if by not in _FIELDS:
        raise ValidationError(f"unknown --by {by!r}; use one of {', '.join(BY)}")
    return _FIELDS[by]


def _group_columns(by: str) -> list[ColumnElement[Any]]:
    """Plain columns to GROUP BY (so an index on them can deliver the groups in order); see ``_key``."""
    if by == "model_version":
        return [traces.c.model_resolved, traces.c.model_requested, traces.c.system_fingerprint]
    return _config_columns(by)


def _config_columns(by: str) -> list[ColumnElement[Any]]:
    """Expressions whose values form the configuration key under ``by``."""
    config_fields(by)
    if by == "prompt_version":
        return [traces.c.prompt_name, traces.c.prompt_version]
    if by == "model_version":
        return [func.coalesce(traces.c.model_resolved, traces.c.model_requested), traces.c.system_fingerprint]
    if by == "variant":
        return [traces.c.variant]
    return []


@dataclass(frozen=True)
class GroupRow:
    """One configuration (and bucket): ``total`` is successes for rates, the sum of values for means.

    Cluster sums (0 when the query does not cluster): ``clusters`` = G, ``sessions`` = how many of
    them are sessions (the rest are traces without a session); with t_c a cluster's total and n_c
    its count, ``c_sq`` = sum t_c^2, ``c_cross`` = sum t_c n_c, ``c_nsq`` = sum n_c^2.
    """

    key: tuple[Any, ...]
    bucket: int | None
    n: int
    total: float
    total_sq: float = 0.0
    clusters: int = 0
    sessions: int = 0
    c_sq: float = 0.0
    c_cross: float = 0.0
    c_nsq: float = 0.0


@dataclass(frozen=True)
class JudgeRow:
    """Judge scores f of one configuration, split by whether the trace also has a user rating y.

    ``n``, ``f_total``, ``f_sq``: every scored trace. ``n_labeled``: traces with a rating too, with
    sums of f, f^2, y, y^2 and of the residual y - f and its square on that subset.
    """

    key: tuple[Any, ...]
    bucket: int | None
    n: int
    f_total: float
    f_sq: float
    n_labeled: int
    lf_total: float
    lf_sq: float
    y_total: float
    y_sq: float
    resid_total: float
    resid_sq: float


def _bucket(conn: Connection, split_at: datetime | None, seconds: float | None) -> ColumnElement[Any] | None:
    """-1 before ``split_at``, then 0, 1, ... per ``seconds`` (a single bucket 0 when seconds is None)."""
    if split_at is None:
        return None
    if seconds is None:
        after: ColumnElement[Any] = literal(0)
    elif conn.dialect.name == "sqlite":
        elapsed = (func.julianday(traces.c.created_at) - func.julianday(sqlite_time(split_at))) * 86400.0
        after = cast(elapsed / float(seconds), Integer)  # non-negative here, so CAST is floor
    else:
        elapsed = extract("epoch", traces.c.created_at - literal(split_at, traces.c.created_at.type))
        after = cast(func.floor(elapsed / float(seconds)), Integer)
    return case((traces.c.created_at < split_at, -1), else_=after)


def _grouped(
    conn: Connection,
    query: Select[Any],
    by: str,
    aggregates: Sequence[ColumnElement[Any]],
    *,
    since: datetime | None,
    until: datetime | None,
    prompt_name: str | None,
    split_at: datetime | None,
    bucket_seconds: float | None,
) -> list[Any]:
    """Add configuration columns, filters, bucket and GROUP BY to a query over ``traces``."""
    cols = _group_columns(by)
    bucket = _bucket(conn, split_at, bucket_seconds)
    labelled = [c.label(f"k{i}") for i, c in enumerate(cols)]
    extra = [bucket.label("bucket")] if bucket is not None else []
    query = query.with_only_columns(*labelled, *extra, *aggregates)
    if since is not None:
        query = query.where(traces.c.created_at >= since)
    if until is not None:
        query = query.where(traces.c.created_at < until)
    if prompt_name is not None:
        query = query.where(traces.c.prompt_name == prompt_name)
    group = [*cols, *([bucket] if bucket is not None else [])]
    if group:
        query = query.group_by(*group)
    return _scan(conn, query)


def _cluster_grouped(
    conn: Connection,
    query: Select[Any],
    by: str,
    value: ColumnElement[Any],
    *,
    squares: bool,
    since: datetime | None,
    until: datetime | None,
    prompt_name: str | None,
    split_at: datetime | None,
    bucket_seconds: float | None,
) -> list[Any]:
    """Like ``_grouped`` with COUNT, SUM(value) (and SUM(value^2)), plus cluster sums.

    Inner GROUP BY (configuration, bucket, cluster) with cluster = COALESCE(session_id, trace id);
    outer GROUP BY (configuration, bucket). Both levels stay in SQL, so a configuration's votes
    never travel to Python one by one; the second level costs a second sort or hash (on 1M traces
    ~1.4x the CPU of the one-level query in SQLite, bench/cluster_overhead.py). Grouped by the
    configuration's key expressions (not the raw columns), so a session that reached one model
    through two aliases stays one cluster.
    """
    cluster = func.coalesce(traces.c.session_id, traces.c.id)
    inner_aggs = [
        func.count().label("nc"),
        func.sum(value).label("tc"),
        func.max(case((traces.c.session_id.is_not(None), 1), else_=0)).label("hs"),
    ]
    if squares:
        inner_aggs.append(func.sum(value * value).label("qc"))
    cols = _config_columns(by)
    bucket = _bucket(conn, split_at, bucket_seconds)
    labelled = [c.label(f"k{i}") for i, c in enumerate(cols)]
    extra = [bucket.label("bucket")] if bucket is not None else []
    query = query.with_only_columns(*labelled, *extra, *inner_aggs)
    if since is not None:
        query = query.where(traces.c.created_at >= since)
    if until is not None:
        query = query.where(traces.c.created_at < until)
    if prompt_name is not None:
        query = query.where(traces.c.prompt_name == prompt_name)
    inner = query.group_by(*cols, *([bucket] if bucket is not None else []), cluster).subquery("per_cluster")
    keys = [inner.c[f"k{i}"] for i in range(len(cols))] + ([inner.c.bucket] if bucket is not None else [])
    nc, tc = cast(inner.c.nc, Float), cast(inner.c.tc, Float)
    outer = select(
        *keys,
        func.count().label("clusters"),
        func.sum(inner.c.hs).label("sessions"),
        func.sum(inner.c.nc).label("n"),
        func.sum(inner.c.tc).label("total"),
        (func.sum(inner.c.qc) if squares else literal(0.0)).label("total_sq"),
        func.sum(tc * tc).label("c_sq"),
        func.sum(tc * nc).label("c_cross"),
        func.sum(nc * nc).label("c_nsq"),
    )
    if keys:
        outer = outer.group_by(*keys)
    return _scan(conn, outer)


def _cluster_row(row: Any, by: str, split_at: datetime | None) -> GroupRow:
    """A ``_cluster_grouped`` row (its key columns are the configuration's key fields, in order)."""
    return GroupRow(
        tuple(row[i] for i in range(len(_FIELDS[by]))),
        _bucket_of(row, split_at),
        int(row.n),
        float(row.total or 0),
        float(row.total_sq or 0),
        int(row.clusters),
        int(row.sessions or 0),
        float(row.c_sq or 0),
        float(row.c_cross or 0),
        float(row.c_nsq or 0),
    )


def _scan(conn: Connection, query: Select[Any]) -> list[Any]:
    """Run an aggregating query. PostgreSQL: without nested loops, see below."""
    if conn.dialect.name != "postgresql":
        return list(conn.execute(query))
    # Right after a bulk ingest the planner's statistics say "1 row" until autoanalyze runs, and
    # it picks nested loops that are quadratic (9 s for 6,600 traces). Scans that aggregate a
    # whole period want hash joins anyway, so take nested loops off the table for this query, and
    # give the hashes room (the 4MB default splits a join over millions of traces into batches).
    # JIT compiled these plans for up to 2.8 s of a 6 s query (10M traces, 2 cores): off.
    settings = {"enable_nestloop": "off", "work_mem": "'64MB'", "jit": "off"}
    for name, value in settings.items():
        conn.exec_driver_sql(f"SET LOCAL {name} = {value}")
    try:
        return list(conn.execute(query))
    finally:
        for name in settings:
            conn.exec_driver_sql(f"RESET {name}")


def _key(row: Any, by: str) -> tuple[Any, ...]:
    if by == "model_version":  # grouped by (resolved, requested, fingerprint): the model is the resolved one
        return (row[0] if row[0] is not None else row[1], row[2])
    return tuple(row[i] for i in range(len(_FIELDS[by])))


def _merge(rows: list[Any]) -> list[Any]:
    """Sum rows that share (key, bucket): e.g. two requested aliases that resolved to one model."""
    merged: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        k = (row.key, row.bucket)
        if k in merged:
            old = merged[k]
            merged[k] = replace(
                old,
                **{
                    f.name: getattr(old, f.name) + getattr(row, f.name)
                    for f in fields(old)
                    if f.name not in ("key", "bucket")
                },
            )
        else:
            merged[k] = row
    return list(merged.values())


def _recorded_since(column: Any, since: datetime | None) -> list[ColumnElement[bool]]:
    return [] if since is None else [column >= since - RECORD_SKEW]


def _latest(conn: Connection, signal: str, since: datetime | None = None) -> Any:
    """Subquery (trace_id, value): each user's newest row of ``signal`` per trace (votes can change).

    Dialect-specific on purpose. SQLite takes bare columns from the max(id) row of each group
    (documented behaviour): one pass over the signal's rows; its planner ran the NOT EXISTS form
    against the wrong index (quadratic). PostgreSQL gets NOT EXISTS, a hash anti-join it can run in
    parallel; a DISTINCT ON subquery hides the column statistics, so the planner hashed all of
    ``traces`` instead of the votes (6.4 s vs 3.0 s for 500k ratings over 10M traces).
    """
    user = func.coalesce(feedback.c.user_id, feedback.c.source)
    recent = _recorded_since(feedback.c.created_at, since)
    if conn.dialect.name == "sqlite":
        query = (
            select(feedback.c.trace_id, feedback.c.value, func.max(feedback.c.id).label("fid"))
            .where(feedback.c.signal == signal, *recent)
            .group_by(feedback.c.trace_id, user)
        )
    else:
        newer = feedback.alias("newer")
        query = select(feedback.c.trace_id, feedback.c.value).where(
            feedback.c.signal == signal,
            *recent,
            ~exists().where(
                newer.c.trace_id == feedback.c.trace_id,
                newer.c.signal == signal,
                newer.c.id > feedback.c.id,
                func.coalesce(newer.c.user_id, newer.c.source) == user,
            ),
        )
    return query.subquery("latest")


def vote_groups(
    conn: Connection,
    by: str,
    *,
    signal: str = "thumbs",
    since: datetime | None = None,
    until: datetime | None = None,
    prompt_name: str | None = None,
    split_at: datetime | None = None,
    bucket_seconds: float | None = None,
) -> list[GroupRow]:
    """Latest vote per (trace, user): n votes, ``total`` = votes with value > 0 (thumbs up), cluster sums."""
    votes = _latest(conn, signal, since)
    base = select(traces.c.id).select_from(traces.join(votes, votes.c.trace_id == traces.c.id))
    base = base.where(votes.c.value.is_not(None))
    up = case((votes.c.value > 0, 1), else_=0)
    rows = _cluster_grouped(
        conn,
        base,
        by,
        up,
        squares=False,
        since=since,
        until=until,
        prompt_name=prompt_name,
        split_at=split_at,
        bucket_seconds=bucket_seconds,
    )
    return _merge([_cluster_row(r, by, split_at) for r in rows])


def mean_groups(
    conn: Connection,
    by: str,
    *,
    signal: str = "rating",
    shift: float = 0.0,
    since: datetime | None = None,
    until: datetime | None = None,
    prompt_name: str | None = None,
    split_at: datetime | None = None,
    bucket_seconds: float | None = None,
) -> list[GroupRow]:
    """Latest value per (trace, user) of ``signal``: n, SUM(v - shift), SUM((v - shift)^2), cluster sums."""
    votes = _latest(conn, signal, since)
    base = select(traces.c.id).select_from(traces.join(votes, votes.c.trace_id == traces.c.id))
    base = base.where(votes.c.value.is_not(None))
    v = cast(votes.c.value, Float) - shift
    rows = _cluster_grouped(
        conn,
        base,
        by,
        v,
        squares=True,
        since=since,
        until=until,
        prompt_name=prompt_name,
        split_at=split_at,
        bucket_seconds=bucket_seconds,
    )
    return _merge([_cluster_row(r, by, split_at) for r in rows])


def rate_groups(
    conn: Connection,
    by: str,
    *,
    signal: str,
    since: datetime | None = None,
    until: datetime | None = None,
    prompt_name: str | None = None,
    split_at: datetime | None = None,
    bucket_seconds: float | None = None,
) -> list[GroupRow]:
    """Share of traces with at least one implicit feedback row of ``signal`` (e.g. repeat_ask, abandon).

    Two queries (all traces; flagged traces) so each can use its own access path: the flagged
    ids drive primary-key look-ups instead of probing feedback once per trace. Cluster sums are
    those of one cluster per trace (each trace is one 0/1 observation): traces in one session
    are not clustered together here, as that needs a per-session pass over every trace.
    """
    opts = {
        "since": since,
        "until": until,
        "prompt_name": prompt_name,
        "split_at": split_at,
        "bucket_seconds": bucket_seconds,
    }
    totals = _grouped(conn, select(traces.c.id).select_from(traces), by, [func.count().label("n")], **opts)
    flagged_ids = select(feedback.c.trace_id).where(
        feedback.c.signal == signal, feedback.c.kind == "implicit", *_recorded_since(feedback.c.created_at, since)
    )
    flagged = _grouped(
        conn,
        select(traces.c.id).select_from(traces).where(traces.c.id.in_(flagged_ids)),
        by,
        [func.count().label("n")],
        **opts,
    )
    hits = {
        (r.key, r.bucket): r.n
        for r in _merge([GroupRow(_key(r, by), _bucket_of(r, split_at), int(r.n), 0.0) for r in flagged])
    }
    out = []
    for r in _merge([GroupRow(_key(r, by), _bucket_of(r, split_at), int(r.n), 0.0) for r in totals]):
        k = float(hits.get((r.key, r.bucket), 0))  # one trace per cluster: t_c = t_c^2 = t_c n_c, n_c^2 = 1
        out.append(replace(r, total=k, clusters=r.n, c_sq=k, c_cross=k, c_nsq=float(r.n)))
    return out


def judge_groups(
    conn: Connection,
    by: str,
    *,
    rubric_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    prompt_name: str | None = None,
    split_at: datetime | None = None,
    bucket_seconds: float | None = None,
) -> list[JudgeRow]:
    """Per configuration: judge score sums over all scored traces and over those with a user rating.

    A trace's judge score f is the mean of its parsed pointwise scores for the rubric; its user
    rating y is the mean of each user's latest rating. These sums are all PPI needs.
    """
    js = (
        select(judge_scores.c.trace_id.label("trace_id"), func.avg(judge_scores.c.score).label("f"))
        .where(
            judge_scores.c.rubric_id == rubric_id,
            judge_scores.c.parse_status == "ok",
            judge_scores.c.score.is_not(None),
            judge_scores.c.other_trace_id.is_(None),
            *_recorded_since(judge_scores.c.created_at, since),
        )
        .group_by(judge_scores.c.trace_id)
        .subquery("js")
    )
    ratings = _latest(conn, "rating", since)
    hr = (
        select(ratings.c.trace_id.label("trace_id"), func.avg(ratings.c.value).label("y"))
        .where(ratings.c.value.is_not(None))
        .group_by(ratings.c.trace_id)
        .subquery("hr")
    )
    f, y = cast(js.c.f, Float), cast(hr.c.y, Float)
    labeled_f = case((hr.c.y.is_not(None), f))
    base = select(traces.c.id).select_from(
        traces.join(js, js.c.trace_id == traces.c.id).outerjoin(hr, hr.c.trace_id == traces.c.id)
    )
    aggs = [
        func.count().label("n"),
        func.sum(f).label("f_total"),
        func.sum(f * f).label("f_sq"),
        func.count(hr.c.y).label("n_labeled"),
        func.sum(labeled_f).label("lf_total"),
        func.sum(labeled_f * labeled_f).label("lf_sq"),
        func.sum(y).label("y_total"),
        func.sum(y * y).label("y_sq"),
        func.sum(y - f).label("resid_total"),
        func.sum((y - f) * (y - f)).label("resid_sq"),
    ]
    rows = _grouped(
        conn,
        base,
        by,
        aggs,
        since=since,
        until=until,
        prompt_name=prompt_name,
        split_at=split_at,
        bucket_seconds=bucket_seconds,
    )
    sums = ("f_total", "f_sq", "lf_total", "lf_sq", "y_total", "y_sq", "resid_total", "resid_sq")
    return _merge(
        [
            JudgeRow(
                key=_key(r, by),
                bucket=_bucket_of(r, split_at),
                n=int(r.n),
                n_labeled=int(r.n_labeled),
                **{k: float(getattr(r, k) or 0) for k in sums},
            )
            for r in rows
        ]
    )


def _bucket_of(row: Any, split_at: datetime | None) -> int | None:
    return int(row.bucket) if split_at is not None else None


def _match(by: str, key: Sequence[Any]) -> list[ColumnElement[bool]]:
    cols = _config_columns(by)
    if len(key) != len(cols):
        raise ValidationError(f"configuration key {tuple(key)!r} does not fit --by {by}")
    return [c.is_(None) if v is None else c == v for c, v in zip(cols, key, strict=True)]


def example_trace_ids(
    conn: Connection, metric: str, by: str, key: Sequence[Any], *, since: datetime, until: datetime, limit: int = 5
) -> list[str]:
    """Trace ids that show the bad outcome of ``metric`` in one configuration and period (newest first).

    ``metric``: ``thumbs`` (down votes), ``rating`` (lowest), ``judge:RUBRIC`` (lowest score), or
    an implicit signal name (flagged traces).
    """
    where = [*_match(by, key), traces.c.created_at >= since, traces.c.created_at < until]
    if metric in ("thumbs", "rating"):
        votes = _latest(conn, metric, since)
        query = (
            select(traces.c.id)
            .select_from(traces.join(votes, votes.c.trace_id == traces.c.id))
            .where(*where, votes.c.value.is_not(None))
        )
        query = query.where(votes.c.value <= 0) if metric == "thumbs" else query
        query = query.order_by(votes.c.value, traces.c.id.desc())
    elif metric.startswith("judge:"):
        query = (
            select(traces.c.id)
            .select_from(traces.join(judge_scores, judge_scores.c.trace_id == traces.c.id))
            .where(
                *where,
                judge_scores.c.rubric_id == metric.removeprefix("judge:"),
                judge_scores.c.score.is_not(None),
                *_recorded_since(judge_scores.c.created_at, since),
            )
            .order_by(judge_scores.c.score, traces.c.id.desc())
        )
    else:
        flagged = select(feedback.c.trace_id).where(
            feedback.c.signal == metric, feedback.c.kind == "implicit", *_recorded_since(feedback.c.created_at, since)
        )
        query = select(traces.c.id).where(*where, traces.c.id.in_(flagged)).order_by(traces.c.id.desc())
    seen: dict[str, None] = {}
    for (trace_id,) in _scan(conn, query.limit(limit * 4)):
        seen.setdefault(trace_id, None)
    return list(seen)[:limit]


def count_traces(conn: Connection, *, since: datetime, until: datetime) -> int:
    query = select(func.count()).select_from(traces).where(traces.c.created_at >= since, traces.c.created_at < until)
    return int(conn.execute(query).scalar_one())


def trace_inputs(conn: Connection, *, since: datetime, until: datetime, limit: int) -> list[Any]:
    """Input messages of the newest ``limit`` traces in a period (for input drift)."""
    query = (
        select(traces.c.input)
        .where(traces.c.created_at >= since, traces.c.created_at < until)
        .order_by(traces.c.created_at.desc())
        .limit(limit)
    )
    return [row[0] for row in conn.execute(query)]


# ---------------------------------------------------------------- alert log


def insert_alerts(conn: Connection, items: Sequence[Alert]) -> None:
    if items:
        conn.execute(alerts.insert(), [a.model_dump() for a in items])


def list_alerts(
    conn: Connection, *, since: datetime | None = None, metric: str | None = None, limit: int | None = None
) -> list[Alert]:
    """Alerts, newest first."""
    query = select(alerts).order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
    if since is not None:
        query = query.where(alerts.c.created_at >= since)
    if metric is not None:
        query = query.where(alerts.c.metric == metric)
    if limit is not None:
        query = query.limit(limit)
    return [_with_evidence(Alert, row) for row in conn.execute(query)]


def _with_evidence(model: type[M], row: Any) -> M:
    """A logged row as its model (a NULL evidence column reads as no evidence)."""
    data = dict(row._mapping)
    data["evidence"] = data.get("evidence") or {}
    return model.model_validate(data)


# ---------------------------------------------------------------- prompt decision log


@dataclass
class PromptState:
    """What ``wb.prompts.get`` serves, from replaying a prompt's events in order.

    ``promoted``: the version everyone gets (None: never promoted, so the latest is served);
    ``rollout``/``share``: a version handed to that share of sessions, the rest get ``promoted``.
    """

    name: str
    promoted: int | None = None
    rollout: int | None = None
    share: float | None = None
    history: list[int] = field(default_factory=list)  # promoted versions, oldest first
    events: list[PromptEvent] = field(default_factory=list)


def insert_prompt_event(conn: Connection, event: PromptEvent) -> None:
    conn.execute(prompt_events.insert().values(**event.model_dump()))


def list_prompt_events(conn: Connection, name: str | None = None) -> list[PromptEvent]:
    """Events oldest first (time, then id)."""
    query = select(prompt_events).order_by(prompt_events.c.created_at, prompt_events.c.id)
    if name is not None:
        query = query.where(prompt_events.c.prompt_name == name)
    return [_with_evidence(PromptEvent, row) for row in conn.execute(query)]


def prompt_state(conn: Connection, name: str) -> PromptState:
    """Replay: promote and rollback set the served version and end any rollout; rollout starts one."""
    state = PromptState(name=name, events=list_prompt_events(conn, name))
    for event in state.events:
        if event.action in ("promote", "rollback"):
            state.promoted, state.rollout, state.share = event.prompt_version, None, None
            state.history.append(event.prompt_version)
        elif event.action == "rollout":
            state.rollout, state.share = event.prompt_version, event.share
    return state
