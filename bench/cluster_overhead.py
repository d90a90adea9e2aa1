"""What the cluster sums cost: compare's vote and rating queries, two-level (per session, then per
configuration) against the one-level GROUP BY they replaced, interleaved on the same store.

Uses bench/compare_scale.py's generated store (5 traces per session, 20% thumbs, 5% ratings), so
build it first (``python bench/compare_scale.py --n N --backend sqlite``; cached under bench/out/).
Prints wall and process CPU time (all threads) per query, median of ``--repeat`` alternating runs,
and the ratio new / old.

    python bench/cluster_overhead.py --n 1000000 --backend sqlite --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_scale import open_bench_store  # noqa: E402
from sqlalchemy import Float, case, cast, func, select  # noqa: E402

from workbench.store import Store  # noqa: E402
from workbench.store import attribution as adb  # noqa: E402
from workbench.store.schema import traces  # noqa: E402


def _one_level(conn: Any, by: str, signal: str) -> list[Any]:
    """The query before cluster sums: latest vote per (trace, user), one GROUP BY per configuration."""
    votes = adb._latest(conn, signal, None)
    base = select(traces.c.id).select_from(traces.join(votes, votes.c.trace_id == traces.c.id))
    base = base.where(votes.c.value.is_not(None))
    if signal == "thumbs":
        aggs = [func.count().label("n"), func.sum(case((votes.c.value > 0, 1), else_=0)).label("total")]
    else:
        v = cast(votes.c.value, Float)
        aggs = [func.count().label("n"), func.sum(v).label("total"), func.sum(v * v).label("total_sq")]
    return adb._grouped(
        conn, base, by, aggs, since=None, until=None, prompt_name=None, split_at=None, bucket_seconds=None
    )


def _two_level(conn: Any, by: str, signal: str) -> list[Any]:
    query = adb.vote_groups if signal == "thumbs" else adb.mean_groups
    return query(conn, by, signal=signal)


def _time(store: Store, fn: Callable[..., list[Any]], by: str, signal: str) -> tuple[float, float, int]:
    with store.read() as conn:
        wall, cpu = time.perf_counter(), time.process_time()
        rows = fn(conn, by, signal)
        return time.perf_counter() - wall, time.process_time() - cpu, sum(int(r.n) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="traces in the compare_scale store")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    store = open_bench_store(args.backend, args.n, False)
    if store is None:
        return
    print(f"{args.backend}, {args.n:,} traces: median of {args.repeat} interleaved runs (after one warm-up each)")
    print(f"  {'query':<28} {'old wall':>9} {'new wall':>9} {'ratio':>6} {'old cpu':>8} {'new cpu':>8}")
    try:
        for by, signal in (
            ("variant", "thumbs"),
            ("prompt_version", "thumbs"),
            ("model_version", "thumbs"),
            ("variant", "rating"),
        ):
            _time(store, _one_level, by, signal), _time(store, _two_level, by, signal)
            old: list[tuple[float, float, int]] = []
            new: list[tuple[float, float, int]] = []
            for _ in range(args.repeat):
                old.append(_time(store, _one_level, by, signal))
                new.append(_time(store, _two_level, by, signal))
            assert old[0][2] == new[0][2], "the two queries count different votes"
            ow, nw = statistics.median(o[0] for o in old), statistics.median(n[0] for n in new)
            oc, nc = statistics.median(o[1] for o in old), statistics.median(n[1] for n in new)
            print(f"  {by + ' ' + signal:<28} {ow:8.2f}s {nw:8.2f}s {nw / ow:6.2f} {oc:7.2f}s {nc:7.2f}s")
    finally:
        store.close()


if __name__ == "__main__":
    main()
