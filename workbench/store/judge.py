"""Judge scores and calibrations: inserts, listing, the judge cache, and judge-vs-user-rating joins.

A judge score row is one verdict (one HTTP answer, or a copy of a cached one) on one trace, or on a
pair of traces (``trace_id`` = first output, ``other_trace_id`` = second, ``order`` = ``ab`` when the
first was shown first, ``ba`` when swapped; ``score`` is always in the original A/B numbering).
Rows whose call failed (``parse_status = 'error'``) are kept as a record but never count as scored
or as a cache hit, so a rerun retries them.

User ratings for calibration: each user's latest explicit ``rating`` (or ``thumbs`` for binary
rubrics) per trace, averaged over users. "Latest per user" groups anonymous feedback by its
``source`` like :func:`workbench.store.feedback.list_feedback` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, exists, func, select

from ..models import Calibration, JudgeScore, Trace
from .schema import calibrations, feedback, judge_scores, traces
from .traces import row_to_trace

__all__ = [
    "JudgedPair",
    "JudgedTrace",
    "insert_calibration",
    "insert_scores",
    "judge_models",
    "judged_pair_keys",
    "judged_pairs",
    "judged_traces",
    "list_calibrations",
    "list_scores",
    "lookup_cache",
    "trace_outputs",
    "traces_to_judge",
    "user_ratings",
]

_CHUNK = 500
_DONE = ("ok", "unparsed")  # statuses that count as "scored" and may serve as a cache hit


@dataclass(frozen=True)
class JudgedTrace:
    """A trace's latest parsed judge score, its users' mean rating (None: nobody rated it) and group keys."""

    trace_id: str
    judge_score: float
    human: float | None
    n_ratings: int
    prompt_name: str | None
    prompt_version: int | None
    model_resolved: str | None
    system_fingerprint: str | None
    variant: str | None


@dataclass(frozen=True)
class JudgedPair:
    """A pair's latest parsed verdicts in each order (original numbering) and each side's mean rating."""

    trace_id: str
    other_trace_id: str
    score_ab: float | None
    score_ba: float | None
    human_a: float | None
    human_b: float | None


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _row_to_score(row: Any) -> JudgeScore:
    return JudgeScore.model_validate(dict(row._mapping))


def insert_scores(conn: Connection, scores: Sequence[JudgeScore]) -> None:
    if scores:
        conn.execute(judge_scores.insert(), [score.model_dump() for score in scores])


def list_scores(
    conn: Connection,
    *,
    trace_ids: Sequence[str] | None = None,
    rubric_id: str | None = None,
    rubric_version: int | None = None,
    judge_model: str | None = None,
    parse_status: str | None = None,
    limit: int | None = None,
) -> list[JudgeScore]:
    """Scores, oldest first."""
    j = judge_scores.c
    conditions = []
    if trace_ids is not None:
        conditions.append(j.trace_id.in_(list(trace_ids)))
    if rubric_id is not None:
        conditions.append(j.rubric_id == rubric_id)
    if rubric_version is not None:
        conditions.append(j.rubric_version == rubric_version)
    if judge_model is not None:
        conditions.append(j.judge_model == judge_model)
    if parse_status is not None:
        conditions.append(j.parse_status == parse_status)
    query = select(judge_scores).where(*conditions).order_by(j.id)
    if limit is not None:
        query = query.limit(limit)
    return [_row_to_score(row) for row in conn.execute(query)]


def lookup_cache(conn: Connection, keys: Sequence[str]) -> dict[str, JudgeScore]:
    """The newest ok/unparsed score per cache key (failed calls are never a hit)."""
    found: dict[str, JudgeScore] = {}
    j = judge_scores.c
    for chunk in _chunks(list(dict.fromkeys(keys))):
        rows = conn.execute(
            select(judge_scores).where(j.cache_key.in_(list(chunk)), j.parse_status.in_(_DONE)).order_by(j.id)
        )
        for row in rows:
            found[row.cache_key] = _row_to_score(row)  # ascending ids: the newest wins
    return found


def _scope(rubric_id: str, rubric_version: int, judge_model: str) -> list[Any]:
    j = judge_scores.c
    return [j.rubric_id == rubric_id, j.rubric_version == rubric_version, j.judge_model == judge_model]


def _trace_filter(query: Select[Any], prompt_name: str | None, prompt_version: int | None) -> Select[Any]:
    t = traces.c
    query = query.where(t.status == "ok", t.output_text.is_not(None), t.output_text != "")
    if prompt_name is not None:
        query = query.where(t.prompt_name == prompt_name)
    if prompt_version is not None:
        query = query.where(t.prompt_version == prompt_version)
    return query


def traces_to_judge(
    conn: Connection,
    *,
    rubric_id: str,
    rubric_version: int,
    judge_model: str,
    prompt_name: str | None = None,
    prompt_version: int | None = None,
    limit: int | None = None,
) -> list[Trace]:
    """Successful traces with an output and no ok/unparsed pointwise score yet, oldest first."""
    j = judge_scores.c
    done = exists().where(
        j.trace_id == traces.c.id,
        j.order.is_(None),
        j.parse_status.in_(_DONE),
        *_scope(rubric_id, rubric_version, judge_model),
    )
    query = _trace_filter(select(traces), prompt_name, prompt_version).where(~done).order_by(traces.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [row_to_trace(row) for row in conn.execute(query)]


def trace_outputs(
    conn: Connection, *, prompt_name: str | None = None, prompt_version: int | None = None
) -> list[Trace]:
    """Every successful trace with an output (for pairing regenerations), oldest first."""
    query = _trace_filter(select(traces), prompt_name, prompt_version).order_by(traces.c.id)
    return [row_to_trace(row) for row in conn.execute(query)]


def judged_pair_keys(
    conn: Connection, *, rubric_id: str, rubric_version: int, judge_model: str
) -> set[tuple[str, str]]:
    """(first, second) trace pairs already judged ok/unparsed in both orders."""
    j = judge_scores.c
    query = (
        select(j.trace_id, j.other_trace_id)
        .where(
            j.other_trace_id.is_not(None),
            j.order.in_(("ab", "ba")),
            j.parse_status.in_(_DONE),
            *_scope(rubric_id, rubric_version, judge_model),
        )
        .group_by(j.trace_id, j.other_trace_id)
        .having(func.count(j.order.distinct()) == 2)
    )
    return {(row.trace_id, row.other_trace_id) for row in conn.execute(query)}


def judge_models(conn: Connection, *, rubric_id: str, rubric_version: int | None = None) -> list[str]:
    """Judge models with at least one parsed score under this rubric (version)."""
    j = judge_scores.c
    query = select(j.judge_model).where(j.rubric_id == rubric_id, j.parse_status == "ok")
    if rubric_version is not None:
        query = query.where(j.rubric_version == rubric_version)
    return sorted({row.judge_model for row in conn.execute(query.distinct())})


def _newest(table: Any, conditions: Sequence[Any], partition: Sequence[Any]) -> Any:
    """Ids of the newest row per partition, by created_at then id (ids only order to the millisecond)."""
    rank = (
        func.row_number()
        .over(partition_by=list(partition), order_by=[table.c.created_at.desc(), table.c.id.desc()])
        .label("rank")
    )
    ranked = select(table.c.id, rank).where(*conditions).subquery()
    return select(ranked.c.id).where(ranked.c.rank == 1)


def _ratings_subquery(signal: str) -> Any:
    f = feedback.c
    wanted = [f.signal == signal, f.kind == "explicit", f.value.is_not(None)]
    newest = _newest(feedback, wanted, [f.trace_id, func.coalesce(f.user_id, f.source)])
    return (
        select(f.trace_id.label("trace_id"), func.avg(f.value).label("human"), func.count().label("n"))
        .where(f.id.in_(newest))
        .group_by(f.trace_id)
        .subquery()
    )


def user_ratings(conn: Connection, trace_ids: Sequence[str], *, signal: str = "rating") -> dict[str, float]:
    """Mean of each user's latest ``signal`` value per trace, for the traces that have one."""
    ratings = _ratings_subquery(signal)
    out: dict[str, float] = {}
    for chunk in _chunks(list(dict.fromkeys(trace_ids))):
        for row in conn.execute(select(ratings.c.trace_id, ratings.c.human).where(ratings.c.trace_id.in_(list(chunk)))):
            out[row.trace_id] = float(row.human)
    return out


def judged_traces(
    conn: Connection, *, rubric_id: str, rubric_version: int, judge_model: str, signal: str = "rating"
) -> list[JudgedTrace]:
    """Every trace's latest parsed pointwise score joined with its users' ratings (outer: unrated kept)."""
    j, t = judge_scores.c, traces.c
    latest = _newest(
        judge_scores,
        [
            *_scope(rubric_id, rubric_version, judge_model),
            j.parse_status == "ok",
            j.score.is_not(None),
            j.order.is_(None),
        ],
        [j.trace_id],
    )
    ratings = _ratings_subquery(signal)
    query = (
        select(
            j.trace_id,
            j.score,
            t.prompt_name,
            t.prompt_version,
            t.model_resolved,
            t.system_fingerprint,
            t.variant,
            ratings.c.human,
            ratings.c.n,
        )
        .select_from(judge_scores.join(traces, t.id == j.trace_id).outerjoin(ratings, ratings.c.trace_id == j.trace_id))
        .where(j.id.in_(latest))
        .order_by(j.trace_id)
    )
    return [
        JudgedTrace(
            r.trace_id,
            float(r.score),
            None if r.human is None else float(r.human),
            int(r.n or 0),
            r.prompt_name,
            r.prompt_version,
            r.model_resolved,
            r.system_fingerprint,
            r.variant,
        )
        for r in conn.execute(query)
    ]


def judged_pairs(
    conn: Connection, *, rubric_id: str, rubric_version: int, judge_model: str, signal: str = "rating"
) -> list[JudgedPair]:
    """Every judged pair's latest parsed verdict per order, with both sides' mean user ratings."""
    j = judge_scores.c
    latest = _newest(
        judge_scores,
        [
            *_scope(rubric_id, rubric_version, judge_model),
            j.parse_status == "ok",
            j.score.is_not(None),
            j.other_trace_id.is_not(None),
            j.order.in_(("ab", "ba")),
        ],
        [j.trace_id, j.other_trace_id, j.order],
    )
    pairs: dict[tuple[str, str], dict[str, float]] = {}
    for row in conn.execute(select(j.trace_id, j.other_trace_id, j.order, j.score).where(j.id.in_(latest))):
        pairs.setdefault((row.trace_id, row.other_trace_id), {})[row.order] = float(row.score)
    ratings = user_ratings(conn, [tid for key in pairs for tid in key], signal=signal)
    return [
        JudgedPair(a, b, verdicts.get("ab"), verdicts.get("ba"), ratings.get(a), ratings.get(b))
        for (a, b), verdicts in sorted(pairs.items())
    ]


def insert_calibration(conn: Connection, item: Calibration) -> None:
    conn.execute(calibrations.insert().values(**item.model_dump()))


def list_calibrations(
    conn: Connection, *, rubric_id: str | None = None, judge_model: str | None = None, limit: int | None = None
) -> list[Calibration]:
    """Stored calibrations, newest first."""
    c = calibrations.c
    conditions = [c.rubric_id == rubric_id] if rubric_id is not None else []
    if judge_model is not None:
        conditions.append(c.judge_model == judge_model)
    query = select(calibrations).where(*conditions).order_by(c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    out = []
    for row in conn.execute(query):
        data = dict(row._mapping)
        for key in ("group_key", "metrics", "mapping"):
            data[key] = data.get(key) or {}
        out.append(Calibration.model_validate(data))
    return out
