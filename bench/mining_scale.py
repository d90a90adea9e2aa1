"""Mining at scale: ``mine`` over 1,000,000 stored traces in 100,000 sessions (SQLite).

    python bench/mining_scale.py [--traces 1000000] [--sessions 100000] [--workers N] [--rebuild]
                                 [--detector learned|embedding|lexical] [--baseline lexical|none]

The store is built once and cached under bench/out/ (gitignored): SIMULATED chat sessions
(tests/simulated.py: re-asks, regenerations, pushback, thanks, copies, pauses, walk-aways)
are cut and re-timed into ``--sessions`` sessions of equal length spread over 30 days, and bulk-inserted
with the driver's executemany (secondary indexes rebuilt afterwards). Each run mines a fresh copy of
that store, then mines again to show the incremental run (nothing new: nothing added).
Prints wall time, traces/s, CPU seconds, findings per signal and peak RSS (this process, the largest
worker, and all of them together).
Target: the first run under 60 s with peak memory under 2 GiB on a 2-core machine, with the default
(learned) detector. ``--baseline lexical`` (the default) also mines a fresh copy with the old word-list
detectors in the same run and prints the ratio; ``--detector embedding`` gives the MiniLM family's figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.simulated import generate_sessions  # noqa: E402
from workbench.feedback import SignalConfig  # noqa: E402
from workbench.feedback.mining import mine  # noqa: E402
from workbench.store import open_store  # noqa: E402
from workbench.store.schema import traces  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
START = datetime(2025, 5, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
TEMPLATE_SESSIONS = 3000
COLUMNS = [c.name for c in traces.columns]


def _encode(value: object) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _template_stream(seed: int) -> list[tuple[float, dict[str, object]]]:
    """Simulated traces as one long stream: (seconds since stream start, encoded static columns)."""
    stream: list[tuple[float, dict[str, object]]] = []
    offset = 0.0
    for session in generate_sessions(TEMPLATE_SESSIONS, seed):
        first = session.traces[0].created_at
        for trace in session.traces:
            row = trace.model_dump()
            static = {
                c: (
                    _encode(row[c])
                    if c in ("params", "input", "tool_calls", "tags", "metadata", "variables")
                    else row[c]
                )
                for c in COLUMNS
            }
            static["stream"] = int(bool(static["stream"]))
            stream.append((offset + (trace.created_at - first).total_seconds(), static))
        offset = stream[-1][0] + 7200.0  # the next template starts two hours later
    return stream


INSERT = (
    f"INSERT INTO traces ({', '.join(chr(34) + c + chr(34) for c in COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def _rows(
    stream: list[tuple[float, dict[str, object]]], sessions: range, start: datetime, step: float, n_traces: int
) -> Iterator[tuple[object, ...]]:
    """Row tuples: ``n_traces`` spread evenly over ``sessions``, session i starting at start + i * step."""
    per_session, extra = divmod(n_traces, len(sessions))
    position = (sessions.start * per_session) % len(stream)
    for i, s in enumerate(sessions):
        count = per_session + (1 if i < extra else 0)
        if position + count > len(stream):
            position = 0
        base_offset = stream[position][0]
        session_start = start + timedelta(seconds=i * step)
        session_id, user_id = f"sess-{s:07d}", f"user-{s % 30011:05d}"
        for k in range(count):
            offset, static = stream[position + k]
            at = session_start + timedelta(seconds=offset - base_offset)
            ms = int(at.timestamp() * 1000)
            row = dict(
                static,
                id=f"{ms:012x}{s:07x}{k:07x}",
                created_at=at.replace(tzinfo=None).isoformat(" ", "microseconds"),
                session_id=session_id,
                user_id=user_id,
            )
            yield tuple(row[c] for c in COLUMNS)
        position += count


def build(path: Path, n_traces: int, n_sessions: int, seed: int) -> None:
    """Create the cached store: migrated schema, bulk rows, then the secondary indexes."""
    t0 = time.perf_counter()
    tmp = path.with_suffix(".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    open_store(f"sqlite:///{tmp}").close()
    stream = _template_stream(seed)
    step = SPAN.total_seconds() / n_sessions
    db = sqlite3.connect(tmp, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-400000")
    indexes = [
        row[0]
        for row in db.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='traces' AND sql IS NOT NULL"
        )
    ]
    for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='traces' AND sql IS NOT NULL"
    ).fetchall():
        db.execute(f'DROP INDEX "{name}"')
    insert = INSERT
    batch: list[tuple[object, ...]] = []
    db.execute("BEGIN")
    for row in _rows(stream, range(n_sessions), START, step, n_traces):
        batch.append(row)
        if len(batch) >= 100_000:
            db.executemany(insert, batch)
            batch = []
    db.executemany(insert, batch)
    db.execute("COMMIT")
    for sql in indexes:
        db.execute(sql)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    tmp.rename(path)
    path.with_suffix(".json").write_text(json.dumps({"traces": n_traces, "sessions": n_sessions, "seed": seed}))
    print(f"built {path.name}: {n_traces:,} traces in {n_sessions:,} sessions in {time.perf_counter() - t0:.1f} s")


def _status_kib(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


class Peaks(threading.Thread):
    """Peak memory while mining. getrusage cannot say: a spawned worker inherits the parent's peak
    from the moment before exec. So: this process's VmHWM (reset first), each worker's own VmHWM, and
    the largest sum of current RSS over all of them, sampled every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: the build phase does not count
        self.worker_kib = 0
        self.total_kib = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            pids = _children()
            self.worker_kib = max([self.worker_kib, *(_status_kib(p, "VmHWM") for p in pids)])
            self.total_kib = max(
                self.total_kib, _status_kib("self", "VmRSS") + sum(_status_kib(p, "VmRSS") for p in pids)
            )

    def stop(self) -> tuple[float, float, float]:
        """(this process, largest worker, all together) in MiB."""
        self.stopped.set()
        self.join()
        own = _status_kib("self", "VmHWM")
        return own / 1024, self.worker_kib / 1024, max(self.total_kib, own + self.worker_kib) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20250501)
    parser.add_argument("--workers", type=int, default=None, help="detection processes (default: auto)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached store")
    parser.add_argument("--detector", default="learned", choices=("learned", "embedding", "lexical"))
    parser.add_argument(
        "--baseline",
        default="lexical",
        choices=("lexical", "none"),
        help="also mine a fresh copy with this family, for a ratio measured in the same run",
    )
    args = parser.parse_args()
    config = SignalConfig(detector=args.detector)

    OUT.mkdir(parents=True, exist_ok=True)
    base = OUT / f"mining_{args.traces}_{args.sessions}.db"
    if args.rebuild or not base.exists():
        build(base, args.traces, args.sessions, args.seed)
    work = OUT / "mining_run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    baseline_s = None
    if args.baseline != "none":
        shutil.copyfile(base, work)
        store = open_store(f"sqlite:///{work}")
        try:
            baseline_s = mine(store, workers=args.workers, config=SignalConfig(detector=args.baseline)).seconds
        finally:
            store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(base, work)

    store = open_store(f"sqlite:///{work}")
    load = os.getloadavg()[0]
    try:
        peaks = Peaks()
        peaks.start()
        before = os.times()
        first = mine(store, workers=args.workers, config=config)
        after = os.times()
        parent, child, together = peaks.stop()
        again = mine(store, workers=args.workers, config=config)
        new_sessions = args.sessions // 100
        with store.write() as conn:  # a new hour of traffic: 1% more sessions after the newest trace
            conn.exec_driver_sql(
                INSERT,
                list(
                    _rows(
                        _template_stream(args.seed + 1),
                        range(args.sessions, args.sessions + new_sessions),
                        first.watermark + timedelta(minutes=1),
                        3600 / new_sessions,
                        args.traces // 100,
                    )
                ),
            )
        fresh = mine(store, workers=args.workers, config=config)
    finally:
        store.close()
    main_cpu = after.user + after.system - before.user - before.system
    child_cpu = after.children_user + after.children_system - before.children_user - before.children_system
    rate = first.traces / first.seconds
    print(
        f"detector {args.detector}: {first.traces:,} traces in {first.sessions:,} SIMULATED sessions, "
        f"{first.workers} worker processes"
    )
    print(
        f"first run: {first.seconds:.1f} s wall, {rate:,.0f} traces/s, {first.found:,} findings, "
        f"{first.added:,} feedback rows added"
    )
    for signal, count in first.signals.items():
        print(f"  {signal:<11} {count.found:>9,} found {count.added:>9,} added")
    print(
        f"CPU: {main_cpu:.1f} s in this process, {child_cpu:.1f} s in workers, "
        f"{(main_cpu + child_cpu) / max(1, first.traces) * 1e6:.0f} us per trace "
        f"(load average {load:.1f} on {os.cpu_count()} cores when the run started; wall time on a shared "
        f"machine includes waiting for a core, CPU time does not)"
    )
    print(
        f"incremental run right after: {again.seconds:.2f} s, {again.traces:,} traces in "
        f"{again.sessions:,} sessions re-judged, {again.added} added"
    )
    print(
        f"incremental run after {args.traces // 100:,} new traces in {new_sessions:,} new sessions: "
        f"{fresh.seconds:.2f} s, {fresh.traces:,} traces in {fresh.sessions:,} sessions judged, "
        f"{fresh.added:,} added"
    )
    print(
        f"peak RSS of the first run: {parent:,.0f} MiB (this process), {child:,.0f} MiB (largest worker), "
        f"{together:,.0f} MiB all processes together"
    )
    if baseline_s is not None:
        print(
            f"baseline ({args.baseline} detectors, same store, same run): {baseline_s:.1f} s; "
            f"{args.detector} / {args.baseline} = {first.seconds / baseline_s:.2f}x"
        )
    ok = first.seconds < 60 and together < 2048
    print("target (< 60 s, < 2 GiB):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
