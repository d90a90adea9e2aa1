"""Anthropic capture overhead: plain ``anthropic.Anthropic`` vs ``wb.wrap(Anthropic())``, both on the SDK's own
HTTP client with a MockTransport, interleaved in blocks of 20 in one run (sync create, sync stream).

    python bench/anthropic_overhead.py [--calls 5000]

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wb-anthropic-bench-"))
    wb = workbench.open(f"sqlite:///{home / 'wb.db'}", ingest="off", spool_limit=4 << 30)
    made = 0
    print(f"anthropic capture overhead, {args.calls} calls per mode and client, interleaved in blocks of 20")
    for stream in (False, True):
        reply = SSE if stream else BODY
        plain = AnthropicEndpoint(*([reply] * (args.calls + 50))).client()
        wrapped = wb.wrap(AnthropicEndpoint(*([reply] * (args.calls + 50))).client())
        for client in (plain, wrapped):  # warm up
            for _ in range(50):
                call(client, stream)
        made += 50
        results: dict[str, tuple[list[float], list[float]]] = {"plain": ([], []), "wrapped": ([], [])}
        done = 0
        while done < args.calls:
            block = min(20, args.calls - done)
            for name, client in (("plain", plain), ("wrapped", wrapped)):
                for _ in range(block):
                    wall, cpu = call(client, stream)
                    results[name][0].append(wall)
                    results[name][1].append(cpu)
            done += block
        made += args.calls
        (pw, pc), (ww, wc) = results["plain"], results["wrapped"]
        print(
            f"  {'stream' if stream else 'create'}: plain p50 {statistics.median(pw):.0f} us; "
            f"added p50 {statistics.median(ww) - statistics.median(pw):+.1f} us; "
            f"thread-CPU p99 plain {pct(pc, 0.99):.0f} us, wrapped {pct(wc, 0.99):.0f} us "
            f"(added {pct(wc, 0.99) - pct(pc, 0.99):+.1f} us)"
        )
    p50, p99 = own_work(wb, args.calls)
    made += args.calls
    print(f"  the wrapper's own work per call: p50 {p50:.1f} us, p99 {p99:.1f} us")
    stats = wb.flush()
    print(f"  stored {stats.traces} of {made} wrapped calls; dropped {wb.dropped}")
    wb.close()


if __name__ == "__main__":
    main()
