"""Ingest throughput: spooled records -> store, in traces per CPU-second (all threads) and per wall second.

    python bench/ingest_throughput.py [--traces 200000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Records are written with the real SpoolWriter (the bytes the wrapper writes: request meta JSON plus the raw
chat-completion body), then ingested the way `workbench ingest` does. SQLite always; PostgreSQL when --pg or
WORKBENCH_TEST_PG names a server (a fresh schema, dropped afterwards).
Targets (issue 12): >= 40,000 traces per CPU-second into SQLite, >= 50,000 into PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from workbench.capture.ingest import ingest_spool  # noqa: E402
from workbench.capture.spool import SpoolWriter  # noqa: E402
from workbench.ids import new_id  # noqa: E402
from workbench.store import open_store  # noqa: E402
from workbench.store import traces as trace_rows  # noqa: E402

BODY = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris is the capital of France."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
    }
)


def spool(directory: Path, n: int) -> None:
    writer = SpoolWriter(directory, limit_bytes=1 << 40)
    for i in range(n):
        meta = {
            "v": 1,
            "id": new_id(),
            "ts": time.time(),
            "op": "chat",
            "base": "http://fake/v1/",
            "ctx": {"session_id": f"s-{i % 1000}", "user_id": f"u-{i % 300}", "tags": ["bench"]},
            "req": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"What is {i}?"}],
                "temperature": 0.2,
            },
            "lat": 812.5,
            "status": 200,
        }
        writer.append(orjson.dumps(meta), BODY)
    writer.close()


def measure(name: str, url: str, n: int, home: Path) -> dict[str, float]:
    directory = home / f"spool-{name}"
    spool(directory, n)
    store = open_store(url)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    stats = ingest_spool(store, directory, pause_gc=True)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    with store.read() as conn:
        stored = trace_rows.count_traces(conn)
    store.close()
    row = {
        "store": name,
        "traces": stats.traces,
        "stored": stored,
        "cpu_s": cpu,
        "wall_s": wall,
        "traces_per_cpu_s": stats.traces / cpu,
        "traces_per_wall_s": stats.traces / wall,
    }
    print(
        f"{name:<10} {stats.traces:>8,} traces  {row['traces_per_cpu_s']:>9,.0f} per CPU-second  "
        f"{row['traces_per_wall_s']:>9,.0f} per wall second  (stored {stored:,})"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=200_000)
    parser.add_argument("--pg", default=os.environ.get("WORKBENCH_TEST_PG"))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wb-ingest-"))
    rows = [measure("sqlite", f"sqlite:///{home / 'wb.db'}", args.traces, home)]
    if args.pg:
        import sqlalchemy as sa

        schema = f"wbbench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(args.pg)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in args.pg else "?"
            rows.append(measure("postgresql", f"{args.pg}{sep}options=-csearch_path%3D{schema}", args.traces, home))
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
