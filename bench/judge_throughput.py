"""Judge runner throughput against a local fake OpenAI-compatible server with fixed latency.

The server runs in its own process (so it does not share the runner's CPU or GIL): a minimal
HTTP/1.1 keep-alive server on ``asyncio.start_server`` that answers every chat completion after
``--latency`` seconds without blocking other requests. The runner is the real one (openai SDK,
semaphore, retries armed, strict parsing, cache). With latency L and concurrency C the ceiling is
C / L calls per second; the target is at least 0.8 of that. ``cpu/call`` is the runner process's CPU
time per call: when it approaches L / C the client, not the endpoint, is the limit (and on a busy
machine other processes' load shows up as a lower ratio with the same cpu/call). ``raw client`` is
the same server driven by bare asyncio sockets at the same concurrency: what this machine allows
right now, so a low ratio with a low raw-client rate means a busy machine, not a slow runner.

    python bench/judge_throughput.py                       # 2,000 calls at concurrency 32 and 64
    python bench/judge_throughput.py --store               # verdicts saved to a SQLite store as they come
    python bench/judge_throughput.py --calls 500 --concurrency 8 16 --latency 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.judge import get_rubric  # noqa: E402
from workbench.judge.runner import JudgeConfig, JudgeItem, JudgeRunner, MemoryCache, ScoreCache  # noqa: E402

BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": '{"reasoning": "clear and correct", "score": 4}'},
            }
        ],
        "usage": {"prompt_tokens": 310, "completion_tokens": 18, "total_tokens": 328},
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)


async def _serve(latency: float, port_out: Any) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                await asyncio.sleep(latency)  # the "model" thinking; other connections carry on
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port_out.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def _server_process(latency: float, port_out: Any) -> None:
    asyncio.run(_serve(latency, port_out))


def start_server(latency: float) -> tuple[multiprocessing.Process, int]:
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.Process(target=_server_process, args=(latency, send), daemon=True)
    process.start()
    return process, receive.recv()


async def _raw_client(port: int, calls: int, concurrency: int) -> float:
    """The floor of client overhead: bare asyncio keep-alive connections, no SDK, no parsing."""
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    left = calls

    async def worker() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left > 0:
            left -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return calls / (time.perf_counter() - started)


def items(n: int, tag: str) -> list[JudgeItem]:
    return [
        JudgeItem(
            f"{tag}-{i}",
            f"Question {i} ({tag}): how do I reset my password?",
            f"Answer {i}: open Settings, choose Security, then Reset password.",
        )
        for i in range(n)
    ]


def one_run(port: int, calls: int, concurrency: int, latency: float, cache: ScoreCache, tag: str) -> dict[str, Any]:
    config = JudgeConfig(
        model="gpt-4o-mini",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="bench",
        concurrency=concurrency,
        timeout=30.0,
    )
    work = items(calls, tag)
    cpu = time.process_time()
    run = JudgeRunner(get_rubric("helpfulness"), config, cache=cache, flush_every=200).run_sync(work)
    cpu = time.process_time() - cpu
    stats = run.stats
    assert stats.ok == calls, f"expected {calls} ok verdicts, got {stats.to_dict()}"
    rerun = JudgeRunner(get_rubric("helpfulness"), config, cache=cache).run_sync(work)
    rate, ideal = calls / stats.elapsed_s, concurrency / latency
    baseline = asyncio.run(_raw_client(port, calls, concurrency))
    return {
        "concurrency": concurrency,
        "calls": calls,
        "elapsed_s": round(stats.elapsed_s, 2),
        "raw_client_per_s": round(baseline, 1),
        "vs_raw_client": round(rate / baseline, 3),
        "calls_per_s": round(rate, 1),
        "ideal_per_s": round(ideal, 1),
        "ratio": round(rate / ideal, 3),
        "client_cpu_ms_per_call": round(cpu / calls * 1000, 2),
        "retries": stats.retries,
        "cost_usd": round(stats.cost or 0.0, 4),
        "rerun_http_requests": rerun.stats.requests,
        "rerun_s": round(rerun.stats.elapsed_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the fake server takes per call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--store", action="store_true", help="cache = a SQLite store (verdicts written as they come)")
    args = parser.parse_args()
    process, port = start_server(args.latency)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in args.concurrency:
                if args.store:
                    from workbench.judge.service import StoreCache
                    from workbench.store import open_store

                    cache: ScoreCache = StoreCache(open_store(Path(tmp) / f"c{concurrency}.db"))
                else:
                    cache = MemoryCache()
                rows.append(one_run(port, args.calls, concurrency, args.latency, cache, f"c{concurrency}"))
    finally:
        process.terminate()
        process.join()
    print(
        f"judge throughput: {args.calls} calls, fake server latency {args.latency * 1000:.0f} ms, "
        f"cache: {'SQLite store' if args.store else 'memory'}"
    )
    print(
        f"{'conc':>5} {'calls/s':>9} {'ideal':>8} {'ratio':>6} {'elapsed':>8} {'cpu/call':>9} {'raw client':>11} "
        f"{'rerun HTTP':>10} {'rerun':>7}"
    )
    for row in rows:
        flag = "ok" if row["ratio"] >= 0.8 else "BELOW 0.8"
        print(
            f"{row['concurrency']:>5} {row['calls_per_s']:>9.1f} {row['ideal_per_s']:>8.1f} {row['ratio']:>6.2f} "
            f"{row['elapsed_s']:>7.2f}s {row['client_cpu_ms_per_call']:>7.2f}ms {row['raw_client_per_s']:>9.1f}/s "
            f"{row['rerun_http_requests']:>10} "
            f"{row['rerun_s']:>6.2f}s  {flag}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
