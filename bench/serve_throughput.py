"""`workbench serve` under OTLP load: spans/s into the spool and into the store, p99 latency, added latency
versus an OTLP sink that discards (same ASGI stack, same client, measured in the same run, interleaved).

Modes, each against real `workbench serve` processes on loopback:
  spool   closed loop, ingest off: how many spans/s the server accepts (each spooled before its 200)
  store   ingest on: --store-spans distinct spans sent as fast as the server takes them; spans/s until every
          one is a row in the store
  latency open loop at half the per-process target (10k spans/s per process, --latency-rate): p50/p99 of the
          sink, of serve (receive path, ingest off, like the sink) and of serve with its ingest follower. The
          load comes from a separate generator process (raw keep-alive HTTP/1.1 on asyncio, its connections
          spread over the workers); latency counts from each request's scheduled send time (no coordinated
          omission), and from its actual send ("from send": the server's part, without the generator's lateness).
          Run twice: unpinned (generator, server and follower free on both cores) and pinned (taskset: the
          generator on core 0, every server process and its follower on core 1).

Server CPU is read from /proc for every server process (all threads, workers included) beside wall time.

  python bench/serve_throughput.py --small                      # a quick check (seconds)
  python bench/serve_throughput.py --processes 1 4 --seconds 10 --rounds 2 --store-spans 100000 \
      --pg postgresql+psycopg://postgres@127.0.0.1:5432/test          # the README's figures (quiet machine)
  python bench/serve_throughput.py --latency-only --processes 1 --seconds 5 --rounds 1   # latency only, ~1 min
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SINK = """
import sys
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
import uvicorn
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb
ExportTraceServiceRequest, ExportTraceServiceResponse = pb.ExportTraceServiceRequest, pb.ExportTraceServiceResponse
EMPTY = ExportTraceServiceResponse().SerializeToString()
async def traces(request):
    ExportTraceServiceRequest.FromString(await request.body())  # decode, then discard
    return Response(EMPTY, media_type="application/x-protobuf")
async def health(request):
    return Response(b"{}", media_type="application/json")
app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"]), Route("/healthz", health)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
            workers=None)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_request(n: int, base: int) -> bytes:
    """One OTLP protobuf request of ``n`` chat spans like an instrumented app's (GenAI semconv, ~800 B each)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    kv = resource.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "bench"
    scope = resource.scope_spans.add()
    scope.scope.name = "bench"
    for i in range(base, base + n):
        span = scope.spans.add()
        span.trace_id = i.to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = "chat gpt-4o-mini"
        span.kind = 3
        span.start_time_unix_nano = time.time_ns()
        span.end_time_unix_nano = span.start_time_unix_nano + 300_000_000
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": f"chatcmpl-{i}",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.request.temperature": 0.2,
            "session.id": f"s-{i % 1000}",
            "user.id": f"u-{i % 300}",
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": f"Where is my order {i}? " * 3}]}]
            ),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": "It ships tomorrow. " * 5}],
                        "finish_reason": "stop",
                    }
                ]
            ),
        }
        for key, value in attrs.items():
            kv = span.attributes.add()
            kv.key = key
            if isinstance(value, str):
                kv.value.string_value = value
            elif isinstance(value, int):
                kv.value.int_value = value
            else:
                kv.value.double_value = value
    return request.SerializeToString()


class Server:
    """A server process group (serve with N workers, or the sink) and its CPU time from /proc."""

    def __init__(
        self, kind: str, store_url: str | None, workers: int, spool: Path, ingest: bool, cpu: str | None = None
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        spool.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
        env["WORKBENCH_SPOOL"] = str(spool)
        env["WORKBENCH_HOME"] = str(spool.parent)
        if kind == "sink":
            command = [sys.executable, "-c", SINK, str(self.port)]
        else:
            command = [
                sys.executable,
                "-m",
                "workbench",
                "--store",
                store_url,
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--ingest",
                "process" if ingest else "off",
            ]
        if cpu is not None:  # every process of the group (workers, the ingest follower) inherits the affinity
            command = ["taskset", "-c", cpu, *command]
        self.proc = subprocess.Popen(
            command,
            env=env,
            cwd=spool.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"{kind} exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind} did not start")
            time.sleep(0.1)
        time.sleep(0.3 * workers)  # every worker listening

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]

    def cpu(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (FileNotFoundError, IndexError, ValueError):
                pass
        return total

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _client(url: str, key: str, bodies: list[bytes], offset: int, step: int, stop: float, once: bool) -> dict:
    """One load process: its own HTTP connection, back-to-back requests."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    latencies: list[float] = []
    errors = 0
    i = offset
    with httpx.Client(timeout=30) as client:
        while (i < len(bodies)) if once else (time.time() < stop):
            t0 = time.perf_counter()
            response = client.post(url + "/v1/traces", content=bodies[i % len(bodies)], headers=headers)
            dt = time.perf_counter() - t0
            i += step
            if response.status_code == 200:
                latencies.append(dt)
            else:
                errors += 1
    return {"latencies": latencies, "errors": errors}


def closed_loop(
    url: str, key: str, bodies: list[bytes], spans_per: int, seconds: float, clients: int, once: bool = False
) -> dict:
    """``clients`` processes sending back to back for ``seconds`` (or each body exactly once)."""
    import multiprocessing

    stop = time.time() + seconds
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        parts = pool.starmap(_client, [(url, key, bodies, n, clients, stop, once) for n in range(clients)])
    wall = time.perf_counter() - t0
    latencies = [lat for part in parts for lat in part["latencies"]]
    return {
        "requests": len(latencies),
        "spans": len(latencies) * spans_per,
        "wall": wall,
        "errors": sum(part["errors"] for part in parts),
        "latencies": latencies,
    }


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the generator: writes a prepared request, reads one response."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None
        self.body = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(buffer) < end + 4 + length:
            return
        self.body = bytes(buffer[end + 4 : end + 4 + length])
        del buffer[: end + 4 + length]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))


async def _balanced_connections(job: dict[str, Any]) -> list[_Connection]:
    """``connections`` keep-alive connections spread evenly over the server's ``workers`` processes. Workers
    share one listening socket and the kernel hands a burst of connections to whichever accepts first (all 16
    went to one of 4 workers): each connection asks /healthz which process it reached, and surplus ones are
    closed until every worker holds its share."""
    loop = asyncio.get_running_loop()
    workers, total = job["workers"], job["connections"]
    share = max(1, total // workers)
    by_pid: dict[Any, list[_Connection]] = {}
    request = f"GET /healthz HTTP/1.1\r\nHost: {job['host']}\r\n\r\n".encode()
    for _attempt in range(total * 50):
        if len(by_pid) >= workers and all(len(c) >= share for c in by_pid.values()):
            break
        _, connection = await loop.create_connection(_Connection, job["host"], job["port"])
        connection.waiter = loop.create_future()
        assert connection.transport is not None
        connection.transport.write(request)
        await connection.waiter
        pid = json.loads(connection.body or b"{}").get("pid") if workers > 1 else 0
        held = by_pid.setdefault(pid, [])
        if len(held) < share:
            held.append(connection)
        else:
            connection.transport.close()
        await asyncio.sleep(0.002)
    else:
        print(f"warning: connections reached {len(by_pid)} of {workers} workers", file=sys.stderr)
    return [c for conns in by_pid.values() for c in conns]


async def _generate(job: dict[str, Any]) -> dict[str, Any]:
    """Open loop: request i is due at start + i/rate whatever happened before; it waits for a free connection
    (the pool is large enough that it rarely must), and its latency counts from when it was due, so a server
    (or generator) that falls behind shows in the tail (no coordinated omission). Latency from the actual
    send is kept too, to tell the generator's own lateness from the server's."""
    loop = asyncio.get_running_loop()
    requests = [bytes.fromhex(r) for r in job["requests"]]
    free: asyncio.Queue[_Connection] = asyncio.Queue()
    for connection in await _balanced_connections(job):
        free.put_nowait(connection)
    rate, n = job["rate"], int(job["rate"] * job["seconds"])
    from_due, from_send, status = [0.0] * n, [0.0] * n, [0] * n

    async def one(i: int, due: float) -> None:
        connection = await free.get()
        sent = time.perf_counter()
        connection.waiter = loop.create_future()
        assert connection.transport is not None
        connection.transport.write(requests[i % len(requests)])
        try:
            code = await connection.waiter
        except ConnectionError:
            code = -1
        done = time.perf_counter()
        from_due[i], from_send[i], status[i] = done - due, done - sent, code
        if code != -1:
            free.put_nowait(connection)

    gc.disable()  # the generator's own pauses would be charged to the server
    tasks = []
    start = time.perf_counter() + 0.2
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i, due)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return {"from_due": from_due, "from_send": from_send, "status": status}


def generator_main() -> None:
    """``serve_throughput.py --generate``: the load generator's own process (job as JSON on stdin)."""
    job = json.loads(sys.stdin.read())
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_generate(job))))


def open_loop(
    url: str, key: str, bodies: list[bytes], rate_rps: float, seconds: float, cpu: str | None = None, workers: int = 1
) -> dict:
    """Requests at a fixed rate from a separate generator process (pinned to ``cpu`` when given): p50/p99 from
    the scheduled send time (what an exporter sees) and from the actual send (the server's part)."""
    host, port = url.removeprefix("http://").split(":")
    requests = [
        (
            f"POST /v1/traces HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/x-protobuf\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies[:16]
    ]
    job = {
        "host": host,
        "port": int(port),
        "rate": rate_rps,
        "seconds": seconds,
        "connections": 16,
        "workers": workers,
        "requests": [r.hex() for r in requests],
    }
    command = [sys.executable, str(Path(__file__).resolve()), "--generate"]
    if cpu is not None:
        command = ["taskset", "-c", cpu, *command]
    out = subprocess.run(command, input=json.dumps(job), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"load generator failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout)
    ok = [i for i, code in enumerate(result["status"]) if code == 200]
    return {
        "requests": len(result["status"]),
        "ok": len(ok),
        "latencies": [result["from_due"][i] for i in ok],
        "service": [result["from_send"][i] for i in ok],
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def count_rows(store_url: str) -> int:
    from workbench.store import open_store
    from workbench.store import traces as trace_rows

    store = open_store(store_url)
    try:
        with store.read() as conn:
            return trace_rows.count_traces(conn)
    finally:
        store.close()


SCHEMAS: list[str] = []
_PG = [""]


def drop_schemas(pg: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(pg)
    with admin.begin() as conn:
        for schema in SCHEMAS:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def fresh_store(kind: str, base: Path, pg: str | None, tag: str) -> str:
    from workbench.store import keys as key_rows
    from workbench.store import open_store

    if kind == "sqlite":
        url = f"sqlite:///{base / tag / 'workbench.db'}"
    else:
        import sqlalchemy as sa

        schema = f"wbbench_{tag}_{os.getpid()}"
        SCHEMAS.append(schema)
        admin = sa.create_engine(pg)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
    store = open_store(url)
    with store.write() as conn:
        key = key_rows.create_key(conn, "bench", ["ingest"])[1]
    store.close()
    return url + "\n" + key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--spans", type=int, default=100, help="spans per request")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=4, help="load-generating processes")
    parser.add_argument("--store-spans", type=int, default=50_000, help="distinct spans sent in store mode")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of each mode")
    parser.add_argument("--pg", default=os.environ.get("WORKBENCH_TEST_PG"), help="PostgreSQL URL (store mode)")
    parser.add_argument("--small", action="store_true", help="a quick check: 2 s, 1 process, 1 round")
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=10_000.0,
        help="spans/s per serve process in the latency runs (default: half the 20k/s target)",
    )
    parser.add_argument(
        "--placement",
        nargs="+",
        choices=["unpinned", "pinned"],
        default=["unpinned", "pinned"],
        help="latency runs with generator and server free to use both cores, and/or pinned one core each (taskset)",
    )
    parser.add_argument("--latency-only", action="store_true", help="skip the spool and store runs")
    args = parser.parse_args()
    if args.small:
        args.processes, args.seconds, args.rounds, args.store_spans = [1], 2.0, 1, 2_000
    bodies = [make_request(args.spans, n * args.spans) for n in range(64)]
    unique = [make_request(args.spans, (10**6) + n * args.spans) for n in range(max(1, args.store_spans // args.spans))]
    print(
        f"request: {args.spans} spans, {len(bodies[0]):,} bytes protobuf; {os.cpu_count()} cores; "
        f"clients {args.clients}; {args.seconds:g} s per run, {args.rounds} interleaved rounds",
        flush=True,
    )
    base = Path(tempfile.mkdtemp(prefix="wb-serve-bench-", suffix=f"-{os.getpid()}"))
    _PG[0] = args.pg or ""
    backends = ["sqlite"] + (["postgres"] if args.pg else [])
    results: dict[str, list[dict[str, Any]]] = {}

    def record(name: str, value: dict[str, Any]) -> None:
        results.setdefault(name, []).append(value)

    tag = 0
    for _round in range(args.rounds):
        for procs in args.processes:
            if not args.latency_only:
                # spool: closed loop, ingest off
                tag += 1
                url, key = fresh_store("sqlite", base, None, f"s{tag}").split("\n")
                server = Server("serve", url, procs, base / f"s{tag}" / "spool", ingest=False)
                cpu0 = server.cpu()
                run = closed_loop(server.url, key, bodies, args.spans, args.seconds, args.clients)
                run["cpu"] = server.cpu() - cpu0
                server.stop()
                record(f"spool/{procs}", run)
                print(
                    f"  spool   {procs} proc: {run['spans'] / run['wall']:>9,.0f} spans/s  p99 "
                    f"{pct(run['latencies'], 0.99):6.1f} ms  server CPU {run['cpu'] / run['wall']:.2f} cores  "
                    f"errors {run['errors']}",
                    flush=True,
                )
                # store: closed loop with ingest on, then until every span is a row
                for backend in backends:
                    tag += 1
                    url, key = fresh_store(backend, base, args.pg, f"d{tag}").split("\n")
                    server = Server("serve", url, procs, base / f"d{tag}" / "spool", ingest=True)
                    t0 = time.perf_counter()
                    run = closed_loop(server.url, key, unique, args.spans, args.seconds, args.clients, once=True)
                    deadline = time.monotonic() + 600
                    while (rows := count_rows(url)) < run["spans"] and time.monotonic() < deadline:
                        time.sleep(0.5)
                    total = time.perf_counter() - t0
                    server.stop()
                    run.update(rows=rows, total=total)
                    record(f"store-{backend}/{procs}", run)
                    print(
                        f"  store   {procs} proc {backend:8}: {rows / total:>9,.0f} spans/s end to end "
                        f"({rows:,} of {run['spans']:,} rows in {total:.1f} s)",
                        flush=True,
                    )
            # latency at half the target load (10k spans/s per process): sink and serve, interleaved, with the
            # generator and the server sharing both cores (unpinned) and each on its own core (pinned)
            rate = args.latency_rate * procs / args.spans
            for placement in args.placement:
                cpus = (None, None) if placement == "unpinned" else ("0", "1")
                for kind in ("sink", "serve", "serve+ingest"):  # serve alone is the receive path, as the sink is
                    tag += 1
                    url, key = fresh_store("sqlite", base, None, f"l{tag}").split("\n")
                    server = Server(
                        kind.split("+")[0],
                        url,
                        procs,
                        base / f"l{tag}" / "spool",
                        ingest=kind == "serve+ingest",
                        cpu=cpus[1],
                    )
                    cpu0 = server.cpu()
                    run = open_loop(
                        server.url, key, bodies, rate, args.seconds, cpu=cpus[0], workers=1 if kind == "sink" else procs
                    )
                    run["cpu"] = server.cpu() - cpu0
                    server.stop()
                    record(f"latency-{placement}-{kind}/{procs}", run)
                    print(
                        f"  latency {procs} proc {placement:8} {kind:12} at {rate * args.spans:,.0f} spans/s: p50 "
                        f"{pct(run['latencies'], 0.5):6.2f} ms  p99 {pct(run['latencies'], 0.99):6.2f} ms  "
                        f"(from send: p99 {pct(run['service'], 0.99):6.2f} ms, max {pct(run['service'], 1.0):6.1f})  "
                        f"ok {run['ok']}/{run['requests']}  server CPU {run['cpu']:.1f} s",
                        flush=True,
                    )

    print("\nsummary (median over rounds)")
    for procs in args.processes:
        if not args.latency_only:
            spool = statistics.median(r["spans"] / r["wall"] for r in results[f"spool/{procs}"])
            capacity = statistics.median(r["spans"] / max(r["cpu"], 1e-9) for r in results[f"spool/{procs}"])
            print(
                f"  {procs} process(es): server CPU per accepted span {1e6 / capacity:.1f} us, i.e. "
                f"{capacity:,.0f} spans/s per fully used core (what a process sustains when the load generator "
                "is not the limit)"
            )
            print(
                f"  {procs} process(es): into the spool {spool:,.0f} spans/s ({spool / procs:,.0f} per process; "
                f"target >= 20,000 per process: {'met' if spool / procs >= 20_000 else 'MISSED'})"
            )
            for backend in backends:
                rate = statistics.median(r["rows"] / r["total"] for r in results[f"store-{backend}/{procs}"])
                print(f"    into the store ({backend}): {rate:,.0f} spans/s")
        for placement in args.placement:
            where = (
                "generator and server on both cores (unpinned)"
                if placement == "unpinned"
                else "generator pinned to core 0, server (and follower) to core 1"
            )
            print(f"  {procs} process(es), {args.latency_rate * procs:,.0f} spans/s, {where}:")

            def med(kind: str, q: float, field: str = "latencies", name: str = f"{placement}-{{}}/{procs}") -> float:
                runs = results["latency-" + name.format(kind)]
                return statistics.median(pct(r[field], q) for r in runs)

            sink99, sink50 = med("sink", 0.99), med("sink", 0.5)
            for kind in ("serve", "serve+ingest"):
                p99, p50 = med(kind, 0.99), med(kind, 0.5)
                print(
                    f"    {kind:12}: p99 {p99:6.2f} ms (sink {sink99:.2f}, added {p99 - sink99:+.2f}); "
                    f"p50 {p50:.2f} ms (sink {sink50:.2f}); from send p99 {med(kind, 0.99, 'service'):.2f} ms; "
                    f"target p99 < 10 ms: {'met' if p99 < 10 else 'MISSED'}"
                )

    # The acceptance figure: the default `workbench serve` (ingest follower on, nothing pinned), per process count.
    if "unpinned" in args.placement:
        for procs in args.processes:
            runs = results[f"latency-unpinned-serve+ingest/{procs}"]
            p99 = statistics.median(pct(r["latencies"], 0.99) for r in runs)
            met = [
                f"{placement} {kind}"
                for placement in args.placement
                for kind in ("serve", "serve+ingest")
                if statistics.median(pct(r["latencies"], 0.99) for r in results[f"latency-{placement}-{kind}/{procs}"])
                < 10
            ]
            print(
                f"  DEFAULT CONFIGURATION, {procs} process(es) (ingest follower on, unpinned): p99 {p99:.2f} ms at "
                f"{args.latency_rate * procs:,.0f} spans/s; target < 10 ms: {'met' if p99 < 10 else 'MISSED'} "
                f"(met in: {', '.join(met) or 'none'})"
            )


if __name__ == "__main__":
    if sys.argv[1:] == ["--generate"]:
        generator_main()
        raise SystemExit(0)
    try:
        main()
    finally:
        for leftover in Path(tempfile.gettempdir()).glob(f"wb-serve-bench-*-{os.getpid()}"):
            shutil.rmtree(leftover, ignore_errors=True)
        if SCHEMAS:
            drop_schemas(os.environ.get("WB_BENCH_PG", "") or _PG[0])
