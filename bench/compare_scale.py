"""compare and watch over millions of traces, in SQLite and PostgreSQL: aggregation happens in SQL.

Generates N traces (default 10,000,000) over 30 days with feedback (20% thumbs with 1% changed votes,
5% ratings, 3% re-asks, 2% abandons) and judge scores (10%), inside the database itself (SQLite: a
recursive CTE ``INSERT ... SELECT``; PostgreSQL: ``generate_series``), with the secondary indexes
dropped during the load and rebuilt after. support@3's thumbs-up rate drops from 72% to 45% in
the last 30 minutes, so watch has an alert (and its evidence queries) to time too.

The stores are cached: SQLite under bench/out/, PostgreSQL in schema ``wb_bench_<N>`` of
$WORKBENCH_BENCH_PG (or $WORKBENCH_TEST_PG); a cached store is reused when its row count matches.

    python bench/compare_scale.py                       # 10M, both backends
    python bench/compare_scale.py --n 1000000 --backend sqlite
    python bench/compare_scale.py --rebuild             # regenerate the cached stores
    python bench/compare_scale.py --indexes proposed    # also time with the indexes proposed for attribution

``--indexes proposed`` creates PROPOSED_INDEXES before timing and drops them afterwards, so the
cached stores stay as the migrations made them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.attribution.service import compare_configurations  # noqa: E402
from workbench.attribution.watch import watch  # noqa: E402
from workbench.store import Store, open_store  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
END = datetime(2026, 3, 1, tzinfo=UTC)  # the generated traffic ends here; watch runs "now" = END
SPAN = timedelta(days=30)
DRIFT = timedelta(minutes=30)
TABLES = ("traces", "feedback", "judge_scores")
CHUNK = 1_000_000
# Indexes that let the GROUP BYs stream in index order (SQLite sorts every grouped row otherwise)
# and let the latest-vote subquery read one covering index. Not in the schema yet: see the report.
PROPOSED_INDEXES = {
    "sqlite": [
        "CREATE INDEX IF NOT EXISTS ix_feedback_latest ON feedback (signal, trace_id, coalesce(user_id, source), id,"
        " value)",
        "CREATE INDEX IF NOT EXISTS ix_traces_variant_time ON traces (variant, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_traces_prompt_time ON traces (prompt_name, prompt_version, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_traces_model_time ON traces (model_resolved, model_requested, "
        "system_fingerprint, created_at)",
    ],
    "postgresql": [
        "CREATE INDEX IF NOT EXISTS ix_feedback_latest ON feedback (signal, trace_id, (coalesce(user_id, source)), id)"
        " INCLUDE (value)",
        "CREATE INDEX IF NOT EXISTS ix_traces_variant_time ON traces (variant, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_traces_prompt_time ON traces (prompt_name, prompt_version, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_traces_model_time ON traces (model_resolved, model_requested, "
        "system_fingerprint, created_at)",
    ],
}


def _say(msg: str) -> None:
    print(msg, flush=True)


def _timed(label: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    _say(f"  {label:<58} {dt:8.2f} s")
    return dt, out


# ---------------------------------------------------------------- generation SQL per dialect


def _sqlite_sql(lo: int, hi: int, n: int) -> list[str]:
    step = SPAN.total_seconds() / n / 86400.0  # days per trace
    start = f"julianday('{(END - SPAN).strftime('%Y-%m-%d %H:%M:%S')}')"
    ts = f"strftime('%Y-%m-%d %H:%M:%f', {start} + i * {step!r}) || '000'"
    drift_from = n - int(n * DRIFT / SPAN)
    traces = f"""
    INSERT INTO traces (id, created_at, operation, session_id, user_id, prompt_name, prompt_version, variant,
        model_requested, model_resolved, system_fingerprint, params, input, output_text, prompt_tokens,
        completion_tokens, total_tokens, latency_ms, stream, status, tags, metadata)
    WITH RECURSIVE seq(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM seq WHERE i < {hi - 1})
    SELECT printf('t%025d', i), {ts}, 'chat', 's' || (i / 5), 'u' || (i % 50000), 'support', 1 + i % 3,
        CASE WHEN abs(random()) % 2 = 0 THEN 'A' ELSE 'B' END, 'gpt-4o', 'gpt-4o-2024-08-06',
        CASE WHEN i < {int(n * 2 / 3)} THEN 'fp_1' ELSE 'fp_2' END, '{{}}',
        '[{{"role":"user","content":"question ' || (i % 1000) || '"}}]', 'an answer of moderate length ' || i,
        30, 40, 70, 800.0, 0, 'ok', '[]', '{{}}'
    FROM seq"""
    fb = "INSERT INTO feedback (id, trace_id, kind, signal, value, strength, source, user_id, created_at) "
    where = f"t.id >= printf('t%025d', {lo}) AND t.id < printf('t%025d', {hi})"
    up = (
        f"CASE WHEN abs(random()) % 1000 < CASE WHEN t.prompt_version = 3 AND t.id >= printf('t%025d', "
        f"{drift_from}) THEN 450 ELSE 720 END THEN 1.0 ELSE 0.0 END"
    )
    return [
        traces,
        f"{fb} SELECT 'f1' || substr(t.id, 3), t.id, 'explicit', 'thumbs', {up}, 1.0, 'user:' || t.user_id, "
        f"t.user_id, t.created_at FROM traces t WHERE {where} AND abs(random()) % 100 < 20",
        f"{fb} SELECT 'f2' || substr(f.trace_id, 3), f.trace_id, 'explicit', 'thumbs', 1.0 - f.value, 1.0, "
        f"f.source, f.user_id, f.created_at FROM feedback f WHERE f.id >= 'f1' || substr(printf('t%025d', {lo}), 3)"
        f" AND f.id < 'f1' || substr(printf('t%025d', {hi}), 3) AND abs(random()) % 100 < 1",
        f"{fb} SELECT 'f3' || substr(t.id, 3), t.id, 'explicit', 'rating', 1 + abs(random()) % 5, 1.0, "
        f"'user:' || t.user_id, t.user_id, t.created_at FROM traces t WHERE {where} AND abs(random()) % 100 < 5",
        f"{fb} SELECT 'f4' || substr(t.id, 3), t.id, 'implicit', 'repeat_ask', -1.0, 0.8, 'repeat_ask@1', NULL, "
        f"t.created_at FROM traces t WHERE {where} AND abs(random()) % 100 < 3",
        f"{fb} SELECT 'f5' || substr(t.id, 3), t.id, 'implicit', 'abandon', -1.0, 0.8, 'abandon@1', NULL, "
        f"t.created_at FROM traces t WHERE {where} AND abs(random()) % 100 < 2",
        "INSERT INTO judge_scores (id, trace_id, rubric_id, rubric_version, judge_model, score, parse_status, "
        "cache_key, created_at) SELECT 'j' || substr(t.id, 2), t.id, 'helpful', 1, 'judge', "
        "1 + abs(random()) % 5, 'ok', 'k' || t.id, t.created_at FROM traces t "
        f"WHERE {where} AND abs(random()) % 100 < 10",
    ]


def _pg_sql(lo: int, hi: int, n: int) -> list[str]:
    step = SPAN.total_seconds() / n
    start = f"timestamptz '{(END - SPAN).isoformat()}'"
    drift_from = n - int(n * DRIFT / SPAN)
    tid = "'t' || lpad(i::text, 25, '0')"
    traces = f"""
    INSERT INTO traces (id, created_at, operation, session_id, user_id, prompt_name, prompt_version, variant,
        model_requested, model_resolved, system_fingerprint, params, input, output_text, prompt_tokens,
        completion_tokens, total_tokens, latency_ms, stream, status, tags, metadata)
    SELECT {tid}, {start} + i * interval '{step!r} seconds', 'chat', 's' || (i / 5), 'u' || mod(i, 50000),
        'support', 1 + mod(i, 3), CASE WHEN random() < 0.5 THEN 'A' ELSE 'B' END, 'gpt-4o', 'gpt-4o-2024-08-06',
        CASE WHEN i < {int(n * 2 / 3)} THEN 'fp_1' ELSE 'fp_2' END, '{{}}',
        '[{{"role":"user","content":"question ' || mod(i, 1000) || '"}}]', 'an answer of moderate length ' || i,
        30, 40, 70, 800.0, false, 'ok', '[]', '{{}}'
    FROM generate_series({lo}, {hi - 1}) AS i"""
    fb = "INSERT INTO feedback (id, trace_id, kind, signal, value, strength, source, user_id, created_at) "
    lo_id, hi_id = f"'t' || lpad('{lo}', 25, '0')", f"'t' || lpad('{hi}', 25, '0')"
    where = f"t.id >= {lo_id} AND t.id < {hi_id}"
    drift_id = f"'t' || lpad('{drift_from}', 25, '0')"
    up = (
        f"CASE WHEN random() < CASE WHEN t.prompt_version = 3 AND t.id >= {drift_id} THEN 0.45 ELSE 0.72 END "
        "THEN 1.0 ELSE 0.0 END"
    )
    return [
        traces,
        f"{fb} SELECT 'f1' || substr(t.id, 3), t.id, 'explicit', 'thumbs', {up}, 1.0, 'user:' || t.user_id, "
        f"t.user_id, t.created_at FROM traces t WHERE {where} AND random() < 0.20",
        f"{fb} SELECT 'f2' || substr(f.trace_id, 3), f.trace_id, 'explicit', 'thumbs', 1.0 - f.value, 1.0, "
        f"f.source, f.user_id, f.created_at FROM feedback f WHERE f.id >= 'f1' || substr({lo_id}, 3) "
        f"AND f.id < 'f1' || substr({hi_id}, 3) AND random() < 0.01",
        f"{fb} SELECT 'f3' || substr(t.id, 3), t.id, 'explicit', 'rating', 1 + floor(random() * 5), 1.0, "
        f"'user:' || t.user_id, t.user_id, t.created_at FROM traces t WHERE {where} AND random() < 0.05",
        f"{fb} SELECT 'f4' || substr(t.id, 3), t.id, 'implicit', 'repeat_ask', -1.0, 0.8, 'repeat_ask@1', NULL, "
        f"t.created_at FROM traces t WHERE {where} AND random() < 0.03",
        f"{fb} SELECT 'f5' || substr(t.id, 3), t.id, 'implicit', 'abandon', -1.0, 0.8, 'abandon@1', NULL, "
        f"t.created_at FROM traces t WHERE {where} AND random() < 0.02",
        "INSERT INTO judge_scores (id, trace_id, rubric_id, rubric_version, judge_model, score, parse_status, "
        "cache_key, created_at) SELECT 'j' || substr(t.id, 2), t.id, 'helpful', 1, 'judge', "
        "1 + floor(random() * 5), 'ok', 'k' || t.id, t.created_at FROM traces t "
        f"WHERE {where} AND random() < 0.10",
    ]


# ---------------------------------------------------------------- build / reuse


def _secondary_indexes(store: Store) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the non-unique indexes on the bulk tables, to drop and rebuild."""
    with store.read() as conn:
        if store.dialect == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
                "('traces', 'feedback', 'judge_scores')"
            ).fetchall()
        else:
            rows = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename IN "
                "('traces', 'feedback', 'judge_scores')"
            ).fetchall()
    return [(r[0], r[1]) for r in rows if "UNIQUE" not in r[1].upper()]


def _count(store: Store) -> int:
    with store.read() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM traces").scalar_one())


def build(store: Store, n: int) -> None:
    indexes = _secondary_indexes(store)
    with store.write() as conn:
        for table in (*TABLES, "alerts"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    make = _sqlite_sql if store.dialect == "sqlite" else _pg_sql
    t0 = time.perf_counter()
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        with store.write() as conn:
            for sql in make(lo, hi, n):
                conn.exec_driver_sql(sql)
        rate = hi / (time.perf_counter() - t0)
        _say(f"  generated {hi:>12,} traces ({rate:,.0f}/s)")
    _timed("rebuild secondary indexes", lambda: _rebuild(store, indexes))
    _timed("ANALYZE", lambda: _analyze(store))


def _rebuild(store: Store, indexes: list[tuple[str, str]]) -> None:
    with store.write() as conn:
        for _, sql in indexes:
            conn.exec_driver_sql(sql)


def _analyze(store: Store) -> None:
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT") if store.dialect != "sqlite" else conn
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def _pg_url(n: int) -> str | None:
    base = os.environ.get("WORKBENCH_BENCH_PG") or os.environ.get("WORKBENCH_TEST_PG")
    if not base:
        return None
    import sqlalchemy as sa

    schema = f"wb_bench_{n}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    engine.dispose()
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def open_bench_store(backend: str, n: int, rebuild: bool) -> Store | None:
    if backend == "sqlite":
        OUT.mkdir(exist_ok=True)
        url = f"sqlite:///{OUT / f'compare_scale_{n}.db'}"
    else:
        url = _pg_url(n)
        if url is None:
            _say("postgres: skipped (set WORKBENCH_BENCH_PG or WORKBENCH_TEST_PG)")
            return None
    store = open_store(url)
    if rebuild or _count(store) != n:
        _say(f"{backend}: generating {n:,} traces with feedback")
        _timed(f"generate {n:,} traces + feedback + judge scores", lambda: build(store, n))
    else:
        _say(f"{backend}: reusing cached store with {n:,} traces")
    return store


# ---------------------------------------------------------------- timings


def _proposed(store: Store, *, create: bool) -> None:
    for sql in PROPOSED_INDEXES[store.dialect]:
        name = sql.split("EXISTS ")[1].split()[0]
        with store.write() as conn:
            conn.exec_driver_sql(sql if create else f"DROP INDEX IF EXISTS {name}")
    if create:
        _analyze(store)


def run(store: Store, backend: str) -> dict[str, float]:
    times: dict[str, float] = {}
    _say(f"{backend}: compare (cold = first query after opening, then warm)")
    for by, metric in (
        ("variant", "thumbs_up_rate"),
        ("variant", "thumbs_up_rate"),
        ("prompt_version", "thumbs_up_rate"),
        ("model_version", "thumbs_up_rate"),
        ("variant", "rating"),
        ("variant", "repeat_ask_rate"),
        ("variant", "abandon_rate"),
        ("variant", "judge:helpful"),
    ):
        dt, report = _timed(
            f"compare --by {by} --metric {metric}",
            lambda by=by, metric=metric: compare_configurations(store, by, metric),
        )
        times.setdefault(f"compare {by} {metric}", dt)
    dt, report = _timed(
        "compare --by variant --since 7d",
        lambda: compare_configurations(store, "variant", "thumbs_up_rate", END - timedelta(days=7)),
    )
    times["compare variant since 7d"] = dt
    _say(f"    {report.comparison.summary}")
    _say(f"{backend}: watch --window 1h --baseline 7d (4 metrics, by prompt_version)")
    dt, wr = _timed("watch --once", lambda: watch(store, now=END))
    times["watch"] = dt
    _say(f"    alerts: {[(a.configuration['label'], a.metric) for a in wr.alerts + wr.repeats]}")
    dt, wr = _timed(
        "watch --once --by variant --metric thumbs_up_rate",
        lambda: watch(store, now=END, by="variant", metrics=["thumbs_up_rate"]),
    )
    times["watch variant thumbs"] = dt
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000, help="traces to generate")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the cached stores")
    parser.add_argument(
        "--indexes",
        choices=("schema", "proposed", "both"),
        default="schema",
        help="time with the schema's indexes, with PROPOSED_INDEXES added, or both",
    )
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    summary = {}
    for backend in backends:
        store = open_bench_store(backend, args.n, args.rebuild)
        if store is None:
            continue
        try:
            if args.indexes in ("schema", "both"):
                summary[backend] = run(store, backend)
            if args.indexes in ("proposed", "both"):
                _timed("create proposed indexes", lambda s=store: _proposed(s, create=True))
                try:
                    summary[f"{backend}+idx"] = run(store, f"{backend} + proposed indexes")
                finally:
                    _proposed(store, create=False)
        finally:
            store.close()
    _say(f"\nsummary ({args.n:,} traces): seconds")
    for backend, times in summary.items():
        for label, dt in times.items():
            _say(f"  {backend:<13} {label:<45} {dt:8.2f}")


if __name__ == "__main__":
    main()
