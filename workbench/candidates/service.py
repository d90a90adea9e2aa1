"""Keep the candidates table in step with stored feedback (``workbench candidates refresh``).

Why two passes: clustering must see every flagged trace at once (near-duplicates asked a month apart
belong together), but full traces of 100k flagged calls do not fit comfortably in memory. So:

1. *Plan*: page through the traces SQL selects as possibly negative (thumbs down, ratings, corrections,
   comments, implicit signals), reading only what clustering needs plus their feedback; keep the traces
   with an effective negative signal (latest vote per user, rating at or below the midpoint, negative
   comment words) and cluster their redacted questions once.
2. *Build*: load full traces, feedback and judge scores for a batch of whole clusters and call
   :func:`explain_candidates` on it. A batch of complete clusters re-clusters to exactly the same
   clusters (leaders only look back, and a member's best leader is in its batch), so keys match the plan.

Both passes read one snapshot. Each batch is upserted in its own short write transaction, skipping
candidates whose builder fields did not change, so a refresh with no new feedback writes nothing.
Candidates no longer produced are deleted unless a person touched them (status or decisions).
Feedback rows that cannot be interpreted (a thumbs value of 0.3) are skipped and reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from workbench.candidates.build import CandidateBuild, cluster_inputs, effective_feedback, explain_candidates, identity
from workbench.candidates.cluster import cluster_texts
from workbench.candidates.score import CandidateConfig, ScoreBreakdown, interpret_feedback
from workbench.errors import ValidationError, WorkbenchError
from workbench.models import Candidate, Feedback, Trace, utcnow
from workbench.store import Store
from workbench.store import candidate_inputs as inputs
from workbench.store.candidates import CandidateDetail, candidate_detail, get_candidate, upsert_candidates

__all__ = ["CandidateExplanation", "Progress", "RefreshStats", "explain_candidate", "refresh_candidates"]

Progress = Callable[[str, int, int], None]  # (phase: "scan" | "cluster" | "build", done, total)
_COMPARED = (
    "representative_trace_id",
    "member_trace_ids",
    "feedback_ids",
    "count",
    "input",
    "output_text",
    "signals",
    "primary_signal",
    "users",
    "prompt_name",
    "prompt_version",
    "model_resolved",
)
_MAX_PROBLEMS = 20


@dataclass
class RefreshStats:
    """What one refresh did; ``problems`` holds the first messages about skipped feedback rows."""

    candidate_traces: int = 0  # traces SQL selected (possibly negative feedback)
    flagged_traces: int = 0  # of those, traces with an effective negative signal
    candidates: int = 0  # clusters built
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0  # stale, untouched candidates deleted
    skipped_feedback: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Plan:
    batches: list[dict[str, list[str]]]  # per batch: cluster key -> member trace ids (canonical order)
    bad_feedback: set[str]


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _usable(
    rows: Sequence[Feedback], by_id: Mapping[str, Trace], config: CandidateConfig, stats: RefreshStats, bad: set[str]
) -> dict[str, tuple[Feedback, int]]:
    """Rows on known traces that the scorer can interpret, by id with their polarity (-1, 0, +1).

    The rest are counted and remembered in ``bad``, so one malformed row never stops a refresh.
    """
    kept: dict[str, tuple[Feedback, int]] = {}
    for row in rows:
        trace = by_id.get(row.trace_id)
        if trace is None:
            continue
        try:
            evidence = interpret_feedback(row, user=identity(row, trace), config=config)
        except ValidationError as exc:
            bad.add(row.id)
            stats.skipped_feedback += 1
            if len(stats.problems) < _MAX_PROBLEMS:
                stats.problems.append(str(exc))
            continue
        kept[row.id] = (row, evidence.polarity)
    return kept


def _plan(conn: Any, config: CandidateConfig, stats: RefreshStats, progress: Progress | None, chunk_size: int) -> _Plan:
    ids = inputs.candidate_trace_ids(conn)
    stats.candidate_traces = len(ids)
    flagged: list[tuple[datetime, str, str, str]] = []  # (created_at, id, question, scope)
    bad: set[str] = set()
    done = 0
    for chunk in _chunks(ids, chunk_size):
        by_id = {trace.id: trace for trace in inputs.load_traces(conn, chunk, full=False)}
        usable = _usable(inputs.load_feedback(conn, chunk), by_id, config, stats, bad)
        rows = [row for row, _ in usable.values()]
        negative = {row.trace_id for row in effective_feedback(rows, by_id) if usable[row.id][1] < 0}
        for trace_id in negative:
            trace = by_id[trace_id]
            question, scope = cluster_inputs(trace)
            created = trace.created_at if trace.created_at.tzinfo else trace.created_at.replace(tzinfo=UTC)
            flagged.append((created, trace_id, question, scope))
        done += len(chunk)
        if progress:
            progress("scan", done, len(ids))
    flagged.sort(key=lambda item: (item[0], item[1]))
    stats.flagged_traces = len(flagged)
    if not flagged:
        return _Plan([], bad)
    if progress:
        progress("cluster", 0, len(flagged))
    clusters = cluster_texts(
        [item[2] for item in flagged],
        order=list(range(len(flagged))),
        scopes=[item[3] for item in flagged],
        threshold=config.cluster_threshold,
    )
    if progress:
        progress("cluster", len(flagged), len(flagged))
    batches: list[dict[str, list[str]]] = [{}]
    size = 0
    for cluster in clusters:
        if size >= chunk_size:
            batches.append({})
            size = 0
        batches[-1][cluster.key] = [flagged[i][1] for i in cluster.members]
        size += cluster.count
    return _Plan(batches, bad)


def _judge_normaliser() -> Callable[[str, float], float | None]:
    """rubric id, raw score -> [0, 1] (1 = good); None for rubrics not found or pairwise ones."""
    from workbench.judge.rubrics import PACKAGED_DIR, BinaryScale, LikertScale, load_rubrics

    try:
        rubrics = load_rubrics()
    except WorkbenchError:  # a broken project rubric must not stop a refresh: use the shipped ones
        rubrics = load_rubrics(PACKAGED_DIR)

    def normalise(rubric_id: str, score: float) -> float | None:
        rubric = rubrics.get(rubric_id)
        scale = rubric.scale if rubric is not None else None
        if isinstance(scale, LikertScale):
            return min(1.0, max(0.0, (score - scale.min) / (scale.max - scale.min)))
        if isinstance(scale, BinaryScale):
            return min(1.0, max(0.0, score))
        return None

    return normalise


class _Judge:
    """Mean normalised pointwise judge score per trace (rubrics loaded once, only if scores exist)."""

    def __init__(self) -> None:
        self._normalise: Callable[[str, float], float | None] | None = None

    def scores(self, conn: Any, trace_ids: Sequence[str]) -> dict[str, float] | None:
        rows = inputs.load_judge_scores(conn, trace_ids)
        if not rows:
            return None
        if self._normalise is None:
            self._normalise = _judge_normaliser()
        sums: dict[str, list[float]] = {}
        for trace_id, rubric_id, score in rows:
            value = self._normalise(rubric_id, score)
            if value is not None:
                sums.setdefault(trace_id, []).append(value)
        return {trace_id: sum(values) / len(values) for trace_id, values in sums.items()} or None


def _build_batch(
    conn: Any, members: Sequence[str], bad: set[str] | None, judge: _Judge, *, now: datetime, config: CandidateConfig
) -> list[CandidateBuild]:
    """Explain the clusters of ``members``; ``bad`` = feedback ids to skip (None: validate here)."""
    traces = inputs.load_traces(conn, members)
    by_id = {trace.id: trace for trace in traces}
    rows = inputs.load_feedback(conn, members)
    if bad is None:
        rows = [row for row, _ in _usable(rows, by_id, config, RefreshStats(), set()).values()]
    else:
        rows = [row for row in rows if row.id not in bad and row.trace_id in by_id]
    return explain_candidates(traces, rows, now=now, config=config, judge_scores=judge.scores(conn, members))


def _same(new: Candidate, old: Candidate, decided: bool) -> bool:
    if any(getattr(new, name) != getattr(old, name) for name in _COMPARED):
        return False
    if not decided and new.expected_output != old.expected_output:
        return False
    return math.isclose(new.priority, old.priority, rel_tol=1e-9, abs_tol=1e-12)


def refresh_candidates(
    store: Store,
    *,
    now: datetime | None = None,
    config: CandidateConfig | None = None,
    progress: Progress | None = None,
    chunk_size: int = 2000,
) -> RefreshStats:
    """Rebuild candidates from all stored feedback; upsert by cluster key, never touching human fields.

    ``now`` fixes the recency term (default: the current time); ``progress(phase, done, total)`` is
    called after each chunk. Memory is bounded by ``chunk_size`` full traces plus one short question
    per flagged trace.
    """
    if chunk_size < 1:
        raise ValidationError(f"chunk_size: must be >= 1, got {chunk_size!r}")
    config = config or CandidateConfig()
    now = now or utcnow()
    stats = RefreshStats()
    judge = _Judge()
    keep: set[str] = set()
    with inputs.snapshot(store) as conn:
        plan = _plan(conn, config, stats, progress, chunk_size)
        done = 0
        for batch in plan.batches:
            members = [trace_id for ids in batch.values() for trace_id in ids]
            builds = _build_batch(conn, members, plan.bad_feedback, judge, now=now, config=config)
            built = {b.candidate.cluster_key: b.candidate.member_trace_ids for b in builds}
            if built != batch:  # cannot happen on one snapshot; refuse rather than write overlapping clusters
                raise WorkbenchError("candidate refresh: clusters differ between plan and build; run it again")
            keep.update(built)
            stats.candidates += len(builds)
            with store.write() as wconn:
                existing = inputs.existing_candidates(wconn, built)
                changed = []
                for build in builds:
                    old = existing.get(build.candidate.cluster_key)
                    if old is not None and _same(build.candidate, *old):
                        stats.unchanged += 1
                    else:
                        changed.append(build.candidate)
                result = upsert_candidates(wconn, changed)
            stats.inserted += result.inserted
            stats.updated += result.updated
            done += len(members)
            if progress:
                progress("build", done, stats.flagged_traces)
    with store.write() as wconn:
        stats.removed = inputs.remove_stale_candidates(wconn, keep)
    return stats


@dataclass
class CandidateExplanation:
    """A candidate's detail plus its recomputed score (None when its feedback changed since the refresh)."""

    detail: CandidateDetail
    score: ScoreBreakdown | None
    redactions: dict[str, int] | None
    note: str | None = None


def explain_candidate(
    store: Store,
    candidate_id: str,
    *,
    now: datetime | None = None,
    config: CandidateConfig | None = None,
    limit: int = 50,
) -> CandidateExplanation:
    """Detail of one candidate and its priority recomputed term by term from its member traces now."""
    if not isinstance(candidate_id, str) or not candidate_id.strip():
        raise ValidationError(f"candidate id must be a non-empty string, got {candidate_id!r}")
    config = config or CandidateConfig()
    with inputs.snapshot(store) as conn:
        candidate = get_candidate(conn, candidate_id)
        detail = candidate_detail(conn, candidate_id, limit=limit)
        members = list(dict.fromkeys([candidate.representative_trace_id, *candidate.member_trace_ids]))
        builds = _build_batch(conn, members, None, _Judge(), now=now or utcnow(), config=config)
    match = next((b for b in builds if b.candidate.cluster_key == candidate.cluster_key), None)
    if match is None:
        return CandidateExplanation(
            detail, None, None, "its feedback changed since the last refresh; run `workbench candidates refresh`"
        )
    note = None
    if sorted(match.candidate.member_trace_ids) != sorted(candidate.member_trace_ids):
        note = "members changed since the last refresh; run `workbench candidates refresh`"
    return CandidateExplanation(detail, match.score, match.redactions, note)
