"""Anthropic capture overhead: plain ``anthropic.Anthropic`` vs ``wb.wrap(Anthropic())``, both on the SDK's own
HTTP client with a MockTransport; plain and wrapped each in its own process, driven in alternating blocks of 20
(sync create, sync stream).

    python bench/anthropic_overhead.py [--calls 5000] [--pairs 2]

Prints per mode: plain p50 wall, added p50 wall, added p99 of the calling thread's CPU (time.thread_time),
and the number of traces stored afterwards (ingest off during the timing, one ingest at the end).
Target (same as the OpenAI wrapper, issue 12): added p50 <= 20 us, thread-CPU p99 <= 100 us, nothing lost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import workbench  # noqa: E402
from tests.provider_support import AnthropicEndpoint, message_body, message_sse  # noqa: E402

QUESTION = [{"role": "user", "content": "Capital of France?"}]
BODY = message_body("Paris is the capital of France.")
SSE = message_sse(["Paris", " is", " the", " capital."])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def call(client, stream: bool) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.thread_time()
    if stream:
        for _ in client.messages.create(model="m", max_tokens=8, messages=QUESTION, stream=True):
            pass
    else:
        client.messages.create(model="m", max_tokens=8, messages=QUESTION)
    return (time.perf_counter() - w0) * 1e6, (time.thread_time() - c0) * 1e6


def own_work(wb, n: int) -> tuple[float, float]:
    """The wrapper's own work per call, alone: what post()/_process_response add around the SDK (take the
    context, build the record's meta, and at the end encode and spool it), on the body the SDK hands post()."""
    import json

    import anthropic

    from workbench.capture.wrap import _begin, _ContextValue

    client = wb.wrap(AnthropicEndpoint().client())
    unset = {
        k: anthropic.omit
        for k in (
            "cache_control",
            "container",
            "metadata",
            "stop_sequences",
            "stream",
            "system",
            "temperature",
            "thinking",
            "tool_choice",
            "tools",
            "top_k",
        )
    }
    body = json.dumps(BODY).encode()
    times = []
    for _ in range(n):
        kwargs = {
            "body": {"max_tokens": 8, "messages": QUESTION, "model": "m", **unset},
            "options": {"headers": {"x-workbench-context": _ContextValue({"session_id": "s-1"})}},
        }
        t0 = time.perf_counter()
        call = _begin(client, "/v1/messages", kwargs)
        call.meta["status"] = 200
        call.finish(body)
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times), pct(times, 0.99)


def _worker(conn, role: str, stream: bool, calls: int, home: str) -> None:  # noqa: ANN001 - a Connection
    """One side in a process of its own, run block by block over a pipe (as bench/capture_overhead.py does):
    in one process the cyclic GC of the plain calls' garbage lands in the wrapped calls and skews their p99."""
    reply = SSE if stream else BODY
    endpoint = AnthropicEndpoint(*([reply] * (calls + 50)))
    wb = None
    if role == "wrapped":
        wb = workbench.open(f"sqlite:///{Path(home) / 'wb.db'}", ingest="off", spool_limit=4 << 30)
        client = wb.wrap(endpoint.client())
    else:
        client = endpoint.client()
    for _ in range(50):  # warm up
        call(client, stream)
    conn.send("ready")
    wall: list[float] = []
    cpu: list[float] = []
    while (k := conn.recv()) is not None:
        for _ in range(k):
            w, c = call(client, stream)
            wall.append(w)
            cpu.append(c)
        conn.send(True)
    stored = dropped = 0
    if wb is not None:
        stored = wb.flush().traces
        dropped = wb.dropped
        wb.close()
    conn.send((wall, cpu, stored, dropped))


def main() -> None:
    import multiprocessing

    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=2, help="fresh process pairs per mode, samples pooled")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wb-anthropic-bench-"))
    ctx = multiprocessing.get_context("spawn")
    per_pair = max(20, args.calls // args.pairs)
    print(
        f"anthropic capture overhead, {per_pair * args.pairs} calls per mode and client; plain and wrapped each in "
        f"its own process ({args.pairs} pairs), alternating blocks of 20"
    )
    made = stored = dropped = 0
    for stream in (False, True):
        results: dict[str, tuple[list[float], list[float]]] = {"plain": ([], []), "wrapped": ([], [])}
        for pair in range(args.pairs):
            workers = {}
            for role in ("plain", "wrapped"):
                parent, child = ctx.Pipe()
                where = home / f"{'stream' if stream else 'create'}-{pair}"
                where.mkdir(parents=True, exist_ok=True)
                proc = ctx.Process(target=_worker, args=(child, role, stream, per_pair, str(where)))
                proc.start()
                workers[role] = (proc, parent)
            for _proc, conn in workers.values():
                assert conn.recv() == "ready"
            for _ in range(per_pair // 20):
                for _proc, conn in workers.values():
                    conn.send(20)
                    conn.recv()
            for role, (proc, conn) in workers.items():
                conn.send(None)
                wall, cpu, n_stored, n_dropped = conn.recv()
                results[role][0].extend(wall)
                results[role][1].extend(cpu)
                proc.join()
                if role == "wrapped":
                    made += 50 + len(wall)
                    stored += n_stored
                    dropped += n_dropped
        (pw, pc), (ww, wc) = results["plain"], results["wrapped"]
        print(
            f"  {'stream' if stream else 'create'}: plain p50 {statistics.median(pw):.0f} us; "
            f"added p50 {statistics.median(ww) - statistics.median(pw):+.1f} us; "
            f"thread-CPU p99 plain {pct(pc, 0.99):.0f} us, wrapped {pct(wc, 0.99):.0f} us "
            f"(added {pct(wc, 0.99) - pct(pc, 0.99):+.1f} us)"
        )
    wb = workbench.open(f"sqlite:///{home / 'own.db'}", ingest="off", spool_limit=4 << 30)
    p50, p99 = own_work(wb, args.calls)
    print(f"  the wrapper's own work per call: p50 {p50:.1f} us, p99 {p99:.1f} us")
    own_stored = wb.flush().traces
    wb.close()
    print(
        f"  stored {stored} of {made} wrapped calls (+{own_stored} of {args.calls} from the own-work step); "
        f"dropped {dropped}"
    )


if __name__ == "__main__":
    main()
