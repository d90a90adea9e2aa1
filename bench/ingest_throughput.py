"""Ingest throughput: spooled records -> store, in traces per CPU-second (all threads) and per wall second.

    python bench/ingest_throughput.py [--traces 200000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                      [--rebuild auto|on|off]

Records are written with the real SpoolWriter (the bytes the wrapper writes: request meta JSON plus the raw
chat-completion body, each with its own response id as a provider returns it), then ingested the way
`workbench ingest` does, into an empty store. SQLite always; PostgreSQL when --pg or WORKBENCH_TEST_PG names a
server (a fresh schema, dropped afterwards).

CPU-seconds are the ingesting process's (all its threads). For PostgreSQL the CPU of the server backends that
served the ingest is printed beside it when the server runs on this machine (read from /proc); the server's
WAL writer and checkpointer are not counted.
Targets (issue 12): >= 40,000 traces per CPU-second into SQLite, >= 50,000 into PostgreSQL. The SQLite figure
is ingest as it runs on this backlog (it builds the secondary indexes once, see workbench.capture.ingest);
"sqlite-rowwise" beside it is the same ingest with the indexes maintained row by row, the path a backlog of
under a quarter of the table takes (no target of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


TARGETS = {"sqlite": 40_000, "postgresql": 50_000}


def spool(directory: Path, n: int) -> None:
    writer = SpoolWriter(directory, limit_bytes=1 << 40)
    head, tail = BODY.split(b"chatcmpl-1", 1)
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
        writer.append(orjson.dumps(meta), b"%schatcmpl-%s%s" % (head, os.urandom(14).hex().encode(), tail))
    writer.close()


def _backend_cpu(pids: list[int]) -> float | None:
    """CPU seconds (user + system) of these PostgreSQL backends, if they run on this machine."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(name: str, url: str, n: int, home: Path, rebuild: bool | None) -> dict[str, float]:
    directory = home / f"spool-{name}"
    spool(directory, n)
    store = open_store(url)
    backends: list[int] = []
    if store.dialect == "postgresql":
        import sqlalchemy as sa

        store.engine.dispose()  # the migration's connection is not the ingest's

        @sa.event.listens_for(store.engine, "connect")
        def _pid(dbapi_conn, _record):  # noqa: ANN001, ANN202
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backends.append(cursor.fetchone()[0])

    cpu0, wall0 = time.process_time(), time.perf_counter()
    stats = ingest_spool(store, directory, pause_gc=True, rebuild_indexes=rebuild)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    server = _backend_cpu(backends) if backends else None
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
    extra = ""
    if server is not None:
        row["server_cpu_s"] = server
        row["traces_per_cpu_s_with_server"] = stats.traces / (cpu + server)
        extra = f"  ({row['traces_per_cpu_s_with_server']:,.0f} per CPU-second counting the server backend)"
    target = TARGETS.get(name)
    if target is None:
        verdict = "no target; indexes kept row by row, as for a backlog under a quarter of the table"
    else:
        verdict = f"target >= {target:,} per CPU-second: " + (
            "met" if row["traces_per_cpu_s"] >= target and stored == n else "MISSED"
        )
    print(
        f"{name:<14} {stats.traces:>8,} traces  {row['traces_per_cpu_s']:>9,.0f} per CPU-second  "
        f"{row['traces_per_wall_s']:>9,.0f} per wall second  (stored {stored:,}; {verdict}){extra}"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=200_000)
    parser.add_argument("--pg", default=os.environ.get("WORKBENCH_TEST_PG"))
    parser.add_argument(
        "--rebuild", choices=["auto", "on", "off"], default="auto", help="SQLite index rebuild for a large backlog"
    )
    args = parser.parse_args()
    rebuild = {"auto": None, "on": True, "off": False}[args.rebuild]
    home = Path(tempfile.mkdtemp(prefix="wb-ingest-"))
    try:
        rows = [measure("sqlite", f"sqlite:///{home / 'wb.db'}", args.traces, home, rebuild)]
        if args.rebuild == "auto":  # the other regime: indexes maintained row by row (a small backlog, a large table)
            rows.append(measure("sqlite-rowwise", f"sqlite:///{home / 'rowwise.db'}", args.traces, home, False))
        if args.pg:
            import sqlalchemy as sa

            schema = f"wbbench_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(args.pg)
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            try:
                sep = "&" if "?" in args.pg else "?"
                url = f"{args.pg}{sep}options=-csearch_path%3D{schema}"
                rows.append(measure("postgresql", url, args.traces, home, rebuild))
            finally:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)  # ~1 GB of spool and databases per 200k traces
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
