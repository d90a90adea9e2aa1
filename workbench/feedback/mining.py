"""``mine``: run the implicit-signal detectors over the store's sessions and store what they find.

Incremental. Each enabled detector (``name@version``) keeps a watermark in ``mining_state``: the
newest trace time it has judged. A run reads every session with a trace newer than the oldest
watermark minus the largest detector window, *whole* (detectors judge a turn by its neighbours), so
new turns in old sessions are seen, and answers whose silence was still too short to call abandonment
last time are decided once the window has passed. Findings are stored with their idempotency keys
(ON CONFLICT DO NOTHING), so re-judging a session adds nothing; a new detector version has no
watermark yet and re-mines everything under its own keys.

The clock is the data, not the wall: ``now`` defaults to the newest stored trace time, and traces
newer than ``now`` are left for the next run. So a quiet store never turns an in-progress session into
"abandoned" just because the miner ran at night, and a run is one consistent cut of the store.

Detection is CPU-bound; with enough traces to pay for it, two worker processes read, decode and judge
sessions (a few hundred per job, by id) while this process lists the sessions and writes findings.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workbench.errors import ConfigError
from workbench.ids import new_id
from workbench.store import Store, open_store
from workbench.store import sessions as session_rows

from .config import SignalConfig
from .signals import DETECTORS, Finding, detect_batch, detector_sources, family, load_encoder

__all__ = ["MineStats", "SignalCount", "feedback_row", "mine", "mining_window", "state_name"]

Progress = Callable[[int, int], None]  # (traces done, traces to do)

_JOB_TRACES = 4000  # traces per unit of work sent to a worker
_WRITE_FINDINGS = 5000  # findings per write transaction (short, so ingest is never kept waiting)
_AUTO_WORKERS_MIN_TRACES = 50_000  # below this, starting processes costs more than it saves


@dataclass
class SignalCount:
    found: int = 0  # findings this run (including ones stored by earlier runs)
    added: int = 0  # new feedback rows


@dataclass
class MineStats:
    """What one run did. ``since`` is the cut-off actually used (None: every session)."""

    sessions: int = 0
    traces: int = 0
    found: int = 0
    added: int = 0
    signals: dict[str, SignalCount] = field(default_factory=dict)
    detectors: list[str] = field(default_factory=list)
    since: datetime | None = None
    now: datetime | None = None
    watermark: datetime | None = None  # where the next run starts (per detector; the oldest)
    advanced: bool = False  # whether this run moved the watermarks
    window_s: float = 0.0  # how far before the watermark the next run starts reading
    workers: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "now", "watermark"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value is not None else None
        return data


def state_name(source: str) -> str:
    """The ``mining_state`` row of one detector version, e.g. ``mine:abandon@1``."""
    return f"mine:{source}"


def mining_window(config: SignalConfig) -> timedelta:
    """How far before a watermark a run looks again: the largest window of the enabled detectors."""
    windows = [getattr(config, signal).window_s for signal in family(config) if getattr(config, signal).enabled]
    return timedelta(seconds=max(windows, default=0.0))


def _cutoffs(
    stored: dict[str, session_rows.Watermark], sources: list[str], window: timedelta
) -> dict[str, datetime | None]:
    """Per detector: sessions touched after this time need judging (None: never mined, all of them)."""
    out: dict[str, datetime | None] = {}
    for source in sources:
        mark = stored.get(state_name(source))
        out[source] = mark.watermark - window if mark is not None and mark.watermark is not None else None
    return out


def _aware(value: datetime | None) -> datetime | None:
    """Naive datetimes are UTC (as everywhere in the store)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _oldest(values: Iterable[datetime | None]) -> datetime | None:
    values = list(values)
    if not values or any(v is None for v in values):
        return None
    return min(v for v in values if v is not None)


# ------------------------------------------------------------------------------------ detection

Row = dict[str, Any]  # a feedback row, shaped like Feedback.model_dump()
Encoded = tuple[str, str, tuple[Any, ...]]  # (idempotency key, signal, driver-ready row)
Job = list[str]  # session ids, read and judged together
_Pending = tuple[Future[list[Encoded]] | None, Job, int]  # (future, job, traces in it)


@dataclass(frozen=True, slots=True)
class _Context:
    """What every job needs; a worker gets it once, at start."""

    config: SignalConfig
    until: datetime  # read traces up to here (the run's cut)
    now: datetime | None  # the detectors' clock
    url: str  # the store, for worker processes to open their own
    judge: Any = None  # the llm family's reaction judge (inline only: it is never sent to a worker)


_worker: tuple[_Context, Store] | None = None


def feedback_row(finding: Finding) -> Row:
    """``finding.to_feedback().model_dump()`` without the pydantic round trip (a test holds them equal).

    Built where the finding is made (a worker process), where validation is redundant: the rows come
    straight from the detectors, and skipping it is most of the cost of storing 100,000s of findings.
    """
    return {
        "id": new_id(),
        "trace_id": finding.trace_id,
        "kind": "implicit",
        "signal": finding.signal,
        "value": 1.0 if finding.signal == "positive" else -1.0,
        "text": finding.text,
        "strength": finding.strength,
        "source": finding.detector,
        "user_id": finding.user_id,
        "evidence": finding.evidence,
        "metadata": {},
        "idempotency_key": finding.idempotency_key,
        "created_at": finding.observed_at,
    }


def _encoder(context: _Context) -> Any:
    """The sentence encoder, loaded once per process, only for the families that use it."""
    config = context.config
    if config.detector == "embedding" or (config.detector == "lexical" and config.repeat_ask.use_embeddings):
        return load_encoder()
    return None


def _init_worker(context: _Context) -> None:
    global _worker
    _worker = (context, open_store(context.url, migrate_schema=False))


def _detect_job(job: Job, context: _Context | None = None, store: Store | None = None) -> list[Encoded]:
    """Read, decode and judge some sessions; rows come back encoded for the store's driver, so the
    writing process only inserts (runs in a worker process, or inline with ``context`` and ``store``)."""
    if context is None or store is None:
        if _worker is None:
            raise RuntimeError("mining worker used before _init_worker")
        context, store = _worker
    # A job allocates many small objects and frees them all at the end: the cyclic GC's scans during it
    # find nothing to free and cost ~15% of detection, so it is paused for the job (cycles, if any, are
    # collected after it).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with store.read() as conn:
            sessions = session_rows.read_sessions(conn, job, until=context.until)
        decoded = [session_rows.decode_session(raw) for raw in sessions]
        rows = [
            feedback_row(f)
            for f in detect_batch(decoded, context.config, context.now, encoder=_encoder(context), judge=context.judge)
        ]
        encoded = session_rows.encode_feedback(rows, store.dialect)
        return [(row["idempotency_key"], row["signal"], enc) for row, enc in zip(rows, encoded, strict=True)]
    finally:
        if collecting:
            gc.enable()


def _jobs(sizes: Iterator[tuple[str, int]], stats: MineStats) -> Iterator[tuple[Job, int]]:
    """Group sessions into jobs of about ``_JOB_TRACES`` traces: (session ids, traces in them)."""
    job: Job = []
    size = 0
    for session_id, count in sizes:
        job.append(session_id)
        size += count
        stats.sessions += 1
        if size >= _JOB_TRACES:
            yield job, size
            job, size = [], 0
    if job:
        yield job, size


def _pool(workers: int, context: _Context) -> ProcessPoolExecutor:
    # spawn: children start clean (no inherited database connections or threads).
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(context,)
    )


def _detect_all(
    jobs: Iterator[tuple[Job, int]], context: _Context, store: Store, workers: int
) -> Iterator[tuple[list[Encoded], int]]:
    """(encoded rows, traces judged) per job, inline or through a pool with a bounded queue.

    If the pool breaks (a worker died, or a spawned process cannot re-import this interpreter's
    ``__main__``, as with ``python - < script``), the jobs it did not finish run inline.
    """
    if workers <= 0:
        for job, size in jobs:
            yield _detect_job(job, context, store), size
        return
    with _pool(workers, context) as pool:
        pending: deque[_Pending] = deque()
        broken = False
        for job, size in jobs:
            future = None
            if not broken:
                try:
                    future = pool.submit(_detect_job, job)
                except BrokenProcessPool:
                    broken = True
            pending.append((future, job, size))
            while pending and (len(pending) > 2 * workers or broken):
                rows, size_done, failed = _collect(pending.popleft(), context, store)
                broken = broken or failed
                yield rows, size_done
        while pending:
            rows, size_done, _failed = _collect(pending.popleft(), context, store)
            yield rows, size_done


def _collect(item: _Pending, context: _Context, store: Store) -> tuple[list[Encoded], int, bool]:
    """A job's rows from its worker, or computed inline when the pool broke: (rows, traces, broken)."""
    future, job, size = item
    if future is not None:
        try:
            return future.result(), size, False
        except BrokenProcessPool:
            pass
    return _detect_job(job, context, store), size, True


# ---------------------------------------------------------------------------------------- store


class _Writer:
    """Buffers rows and stores them in short transactions, counting what was new per signal."""

    def __init__(self, store: Store, stats: MineStats) -> None:
        self.store = store
        self.stats = stats
        self.buffer: list[Encoded] = []

    def add(self, rows: list[Encoded]) -> None:
        self.buffer.extend(rows)
        if len(self.buffer) >= _WRITE_FINDINGS:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        by_signal: dict[str, dict[str, tuple[Any, ...]]] = {}
        for key, signal, enc in self.buffer:
            by_signal.setdefault(signal, {})[key] = enc
        self.buffer = []
        with self.store.write() as conn:  # one insert per signal: its row count is that signal's "added"
            added = {
                signal: session_rows.insert_feedback_rows(conn, list(rows.values()))
                for signal, rows in by_signal.items()
            }
        for signal, rows in by_signal.items():
            count = self.stats.signals.setdefault(signal, SignalCount())
            count.found += len(rows)
            count.added += added[signal]
            self.stats.found += len(rows)
            self.stats.added += added[signal]


def _workers(requested: int | None, traces: int, config: SignalConfig) -> int:
    if _encoder(_Context(config, datetime.now(UTC), None, "")) is not None or config.detector == "llm":
        return 0  # one encoder in this process, not one per worker
    if requested is not None:
        return max(0, requested)
    if traces < _AUTO_WORKERS_MIN_TRACES:
        return 0
    return min(2, os.cpu_count() or 1)


def mine(
    store: Store,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
    config: SignalConfig | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    judge: Any = None,
) -> MineStats:
    """Judge the sessions that changed since the last run and store the findings as implicit feedback.

    ``since``: judge sessions with a trace after this time instead of picking up from the
    watermarks; watermarks then advance only if the run covered everything they had pending, so
    ``since`` never makes a later run skip a session. ``now``: the clock for abandonment (default:
    the newest stored trace time); traces after it are left for a later run. ``workers``: detection
    processes (default: 2 when there are enough traces to pay for starting them, else inline).
    ``judge``: the reaction judge for ``config.detector == "llm"`` (``signals.llm.reaction_judge``).
    """
    started = time.perf_counter()
    since, now = _aware(since), _aware(now)
    config = config or SignalConfig()
    _encoder(_Context(config, datetime.now(UTC), None, ""))  # fail now (ConfigError naming the extra)
    if config.detector == "llm" and judge is None:
        raise ConfigError("the llm detector needs a reaction judge: workbench mine --detector llm --model M")
    sources = detector_sources(config)
    stats = MineStats(
        detectors=sources, signals={DETECTORS[s.split("@")[0]].info.signal: SignalCount() for s in sources}
    )
    with store.read() as conn:
        newest = session_rows.newest_trace_time(conn)
        stored = session_rows.load_watermarks(conn, [state_name(s) for s in sources])
    until = newest if now is None or newest is None else min(newest, now)
    stats.now = now or newest
    window = mining_window(config)
    stats.window_s = window.total_seconds()
    cutoffs = _cutoffs(stored, sources, window)
    stats.since = since if since is not None else _oldest(cutoffs.values())
    if not sources or until is None:  # nothing enabled, or no traces
        stats.seconds = time.perf_counter() - started
        return stats
    with store.read() as conn:
        total = session_rows.count_session_traces(conn, since=stats.since, until=until)
    stats.workers = _workers(workers, total, config)
    context = _Context(config, until, stats.now, store.location.url, judge)
    writer = _Writer(store, stats)
    done = 0
    if progress is not None:
        progress(0, total)
    with store.read() as conn:
        jobs = _jobs(session_rows.iter_session_sizes(conn, since=stats.since, until=until), stats)
        for rows, size in _detect_all(jobs, context, store, stats.workers):
            writer.add(rows)
            done += size
            if progress is not None:
                progress(done, total)
    writer.flush()
    stats.traces = done
    _advance(store, stats, sources, cutoffs, stored, until)
    stats.seconds = time.perf_counter() - started
    return stats


def _advance(
    store: Store,
    stats: MineStats,
    sources: list[str],
    cutoffs: dict[str, datetime | None],
    stored: dict[str, session_rows.Watermark],
    until: datetime,
) -> None:
    """Move each detector's watermark to ``until`` when this run covered everything it had pending."""
    marks: list[datetime | None] = []
    with store.write() as conn:
        for source in sources:
            pending_from = cutoffs[source]
            old = stored.get(state_name(source))
            old_mark = old.watermark if old is not None else None
            covered = stats.since is None or (pending_from is not None and stats.since <= pending_from)
            if not covered:
                marks.append(old_mark)
                continue
            mark = until if old_mark is None else max(old_mark, until)
            marks.append(mark)
            stats.advanced = True
            details = {
                "since": stats.since.isoformat() if stats.since else None,
                "sessions": stats.sessions,
                "traces": stats.traces,
                **asdict(stats.signals.get(DETECTORS[source.split("@")[0]].info.signal, SignalCount())),
            }
            session_rows.save_watermark(conn, state_name(source), mark, details)
    stats.watermark = _oldest(marks)
