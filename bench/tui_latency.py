"""Triage app latency on a store of 1,000,000 candidates: launch to first rendered queue, and keypress to
updated screen (next, accept, undo, open detail, back, filter, search), measured with Pilot (headless).

    python bench/tui_latency.py               # builds bench/out/tui_1m.db once (a few minutes), then measures
    python bench/tui_latency.py --n 200000    # smaller store
    python bench/tui_latency.py --rebuild     # rebuild the cached store

A keypress is timed from handing the key to the app until every handler it triggered (and any store
query it started off the UI thread) has finished and the screen has been re-rendered. A real terminal
adds at most one frame (Textual paces screen updates at 60 Hz) plus the terminal's own drawing.
Targets (issue 6): open < 2 s, each keypress < 50 ms p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402

from workbench.ids import new_id  # noqa: E402
from workbench.store import open_store  # noqa: E402
from workbench.store.schema import candidates  # noqa: E402
from workbench.tui import TriageApp  # noqa: E402
from workbench.tui.screens import DetailScreen, QueueScreen  # noqa: E402

SIZE = (140, 40)
QUESTIONS = ["How do I reset my password?", "Can I get a refund?", "Why was my card declined?",
             "How do I export my data to CSV?", "The app crashes when I upload a photo",
             "How do I change my email?", "Is there a student discount?", "How do I delete my account?"]
SIGNALS = ["thumbs", "repeat_ask", "regenerate", "pushback", "abandon", "correction"]
MODELS = ["gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-4.1-2025-04-14"]


def build(path: Path, n: int) -> None:
    """One transaction of chunked executemany inserts (the store's own schema and types)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = open_store(path)
    rng = random.Random(42)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with store.write() as conn:
        chunk: list[dict[str, object]] = []
        for i in range(n):
            question = f"{rng.choice(QUESTIONS)} (case {i})"
            signal = rng.choice(SIGNALS)
            at = now - timedelta(minutes=rng.randint(0, 60 * 24 * 60))
            chunk.append({
                "id": new_id(), "cluster_key": f"bench-{i}", "representative_trace_id": f"t{i}",
                "member_trace_ids": [f"t{i}"], "feedback_ids": [], "count": 1,
                "input": [{"role": "system", "content": "Answer politely."}, {"role": "user", "content": question}],
                "output_text": f"Answer to {question}", "expected_output": None, "signals": {signal: 1.0},
                "primary_signal": signal, "users": rng.randint(1, 9), "priority": rng.random(),
                "status": "open" if rng.random() < 0.9 else rng.choice(["accepted", "rejected", "skipped"]),
                "labels": [], "notes": None, "prompt_name": "support-answer", "prompt_version": rng.randint(1, 4),
                "model_resolved": rng.choice(MODELS), "created_at": at, "updated_at": at,
            })
            if len(chunk) == 20_000:
                conn.execute(candidates.insert(), chunk)
                chunk.clear()
                print(f"\r  inserted {i + 1:,} / {n:,}", end="", flush=True)
        if chunk:
            conn.execute(candidates.insert(), chunk)
    store.close()
    print(f"\r  built {n:,} candidates in {time.perf_counter() - started:.0f} s ({path})")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, values: list[float], target_ms: float | None, cpu: list[float] | None = None) -> str:
    ms = [v * 1000 for v in values]
    p50, p95 = statistics.median(ms), pct(ms, 0.95)
    verdict = "" if target_ms is None else ("ok" if p95 < target_ms else f"OVER {target_ms:g} ms")
    cpu_ms = f"   cpu p50 {statistics.median(cpu) * 1000:5.1f} p95 {pct(cpu, 0.95) * 1000:5.1f}" if cpu else ""
    return (f"  {name:<24} n={len(ms):<4} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {max(ms):7.1f} ms{cpu_ms}"
            f"  {verdict}")


async def _settled(app: TriageApp, pilot: object, done: Callable[[], bool], timeout: float = 30.0) -> None:
    start = time.perf_counter()
    while True:
        await pilot._wait_for_screen()  # type: ignore[attr-defined]
        if done():
            break
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the screen did not update")
        await asyncio.sleep(0.0005)
    app.screen._on_timer_update()  # render the frame now (what the 60 Hz timer would do)


CPU: dict[str, list[float]] = {}


async def press(app: TriageApp, pilot: object, key: str, done: Callable[[], bool]) -> float:
    """Wall time from key to rendered screen; the process CPU time (all threads) goes to CPU[key]."""
    char = key if len(key) == 1 else None
    event = events.Key(key, char)
    event.set_sender(app)
    start, cpu = time.perf_counter(), time.process_time()
    app._driver.send_message(event)  # type: ignore[union-attr]
    await _settled(app, pilot, done)
    CPU.setdefault(key, []).append(time.process_time() - cpu)
    return time.perf_counter() - start


async def measure(path: Path, reps: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {k: [] for k in (
        "launch (in process)", "next (down)", "accept (a)", "undo (u)", "open detail (enter)", "back (esc)",
        "next in detail (])", "filter status (t)", "search keystroke")}
    CPU.clear()
    launched = time.perf_counter()
    app = TriageApp(store_url=str(path), actor="bench")
    async with app.run_test(size=SIZE) as pilot:
        await _settled(app, pilot, lambda: app.queue_screen is not None and bool(app.queue_screen.queue_list.rows))
        results["launch (in process)"].append(time.perf_counter() - launched)
        queue: QueueScreen = app.queue_screen  # type: ignore[assignment]
        lst = queue.queue_list
        while app.facets is None:  # let the start-up background reads (count, filter values) finish first
            await asyncio.sleep(0.05)
        await app.workers.wait_for_complete()

        for _ in range(reps * 3):  # walk well past the first pages, so prefetching is part of the figures
            before = lst.rows[lst.cursor].id
            results["next (down)"].append(await press(app, pilot, "down", lambda b=before: lst.current.id != b))
        for _ in range(reps):
            stack = len(app.desk.undo_stack)
            results["accept (a)"].append(await press(app, pilot, "a", lambda s=stack: len(app.desk.undo_stack) > s))
            stack = len(app.desk.undo_stack)
            results["undo (u)"].append(await press(app, pilot, "u", lambda s=stack: len(app.desk.undo_stack) < s))
        for _ in range(reps):
            results["open detail (enter)"].append(
                await press(app, pilot, "enter", lambda: isinstance(app.screen, DetailScreen)))
            current = app.screen.candidate_id  # type: ignore[attr-defined]
            results["next in detail (])"].append(await press(
                app, pilot, "right_square_bracket", lambda c=current: app.screen.candidate_id != c))  # type: ignore
            results["back (esc)"].append(await press(app, pilot, "escape", lambda: isinstance(app.screen, QueueScreen)))
        for _ in range(max(10, reps // 5)):
            gen = queue.generation
            results["filter status (t)"].append(
                await press(app, pilot, "t", lambda g=gen: queue.shown_generation > g))
        while queue.flt.status != "open":
            await press(app, pilot, "t", lambda g=queue.generation: queue.shown_generation > g)
        await press(app, pilot, "slash", lambda: app.focused is not None and app.focused.id == "search")
        for _ in range(max(5, reps // 20)):
            for key in "refund":
                gen = queue.generation
                results["search keystroke"].append(
                    await press(app, pilot, key, lambda g=gen: queue.shown_generation > g))
            for _ in "refund":
                gen = queue.generation
                await press(app, pilot, "backspace", lambda g=gen: queue.shown_generation > g)
        await app.workers.wait_for_complete()
    return results


COLD = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from workbench.tui import TriageApp
async def main():
    app = TriageApp(store_url={path!r}, actor="bench")
    async with app.run_test(size=(140, 40)) as pilot:
        while not (app.queue_screen is not None and app.queue_screen.queue_list.rows):
            await asyncio.sleep(0.001)
        await pilot._wait_for_screen()
        app.screen._on_timer_update()
        print(time.perf_counter())
asyncio.run(main())
"""


def cold_launch(path: Path) -> float:
    """A new Python process: imports, store open (migration check), first page, first frame."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", COLD.format(root=str(ROOT), path=str(path))], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1]) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    path = args.db or ROOT / "bench" / "out" / f"tui_{args.n // 1000}k.db"
    if args.rebuild or not path.exists():
        print(f"building a store with {args.n:,} candidates (cached for next time)")
        build(path, args.n)
    colds = [cold_launch(path) for _ in range(3)]
    load_before = os.getloadavg()[0]
    results = asyncio.run(measure(path, args.reps))
    print(f"\ntriage app latency, {args.n:,} candidates, terminal {SIZE[0]}x{SIZE[1]}, store {path.name}, "
          f"{os.cpu_count()} cores, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    print("  wall = key to rendered screen; cpu = CPU time the app used for it (all threads)")
    print(row("launch (new process)", colds, 2000))
    keys = {"next (down)": "down", "accept (a)": "a", "undo (u)": "u", "open detail (enter)": "enter",
            "back (esc)": "escape", "next in detail (])": "right_square_bracket", "filter status (t)": "t"}
    for name, values in results.items():
        cpu = CPU.get(keys.get(name, ""), []) if name in keys else None
        if name == "search keystroke":
            cpu = [x for k in "refund" for x in CPU.get(k, [])]
        print(row(name, values, 2000 if name.startswith("launch") else 50, cpu))


if __name__ == "__main__":
    main()
