"""Triage app latency on a store of 1,000,000 candidates: launch to first rendered queue, and keypress to
updated screen (next, accept, undo, open detail, back, filter, search), measured with Pilot (headless).

    python bench/tui_latency.py               # builds bench/out/tui_1000k.db once (~10 minutes), then measures
    python bench/tui_latency.py --n 100000    # smaller store
    python bench/tui_latency.py --rebuild     # rebuild the cached store

A keypress is timed from handing the key to the app until every handler it triggered (and any store
query it started off the UI thread) has finished and the screen has been re-rendered. A real terminal
adds at most one frame (Textual paces screen updates at 60 Hz) plus the terminal's own drawing.
Targets (issue 6, issue 13 item 9): open < 2 s, each keypress < 50 ms p95, search keystrokes included
for a common, a rare and an absent term, typed one key at a time and deleted again.

The store is built for the worst case a reviewer meets: the candidates near the top of the queue (the
ones the bench opens) each carry member traces with long outputs, feedback and judge scores; a rare
term (an account number shared by ~20 candidates) is typed through prefixes of every density. The
search section also times the search that came before the index (LIKE over the candidate columns,
copied below as the baseline) on the same terms, interleaved with the indexed search, at the store.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Text, func, or_, select, type_coerce  # noqa: E402
from textual import events  # noqa: E402

from workbench.ids import new_id  # noqa: E402
from workbench.store import open_store  # noqa: E402
from workbench.store.candidates import QueueFilter, count_queue, queue_page  # noqa: E402
from workbench.store.schema import candidates, feedback, judge_scores, traces  # noqa: E402
from workbench.tui import TriageApp  # noqa: E402
from workbench.tui.screens import DetailScreen, QueueScreen  # noqa: E402

SIZE = (140, 40)
QUESTIONS = [
    "How do I reset my password?",
    "Can I get a refund?",
    "Why was my card declined?",
    "How do I export my data to CSV?",
    "The app crashes when I upload a photo",
    "How do I change my email?",
    "Is there a student discount?",
    "How do I delete my account?",
]
SIGNALS = ["thumbs", "repeat_ask", "regenerate", "pushback", "abandon", "correction"]
MODELS = ["gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-4.1-2025-04-14"]
ANSWER = (
    "Thanks for reaching out. {q} Here is what you can do: open Settings, choose Account, then follow the "
    "steps on screen. If that does not help, reply to this message with your account number and we will "
    "look into it within one business day. "
)
RICH = 3_000  # candidates at the top of the queue with traces, feedback and judge scores attached
MEMBERS, FEEDBACK, RUBRICS = 20, 30, ("helpfulness", "tone")
SEARCHES = {"common": "refund", "rare": "acct1234", "absent": "kangaroo"}  # typed one key at a time


def _searches(n: int) -> None:
    """The rare term is an account number that exists (~20 candidates each); 1234 from 24,700 candidates."""
    accounts = max(1, n // 20)
    SEARCHES["rare"] = f"acct{1234 if accounts > 1234 else accounts * 2 // 3}"


def build(path: Path, n: int) -> None:
    """One transaction of chunked executemany inserts (the store's own schema and types); the search
    index is filled by the store's triggers as the candidates go in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = open_store(path)
    rng = random.Random(42)
    now = datetime.now(UTC)
    started = time.perf_counter()
    rich_from = 1.0 - RICH / n  # priorities are uniform: about RICH candidates at or above this
    with store.write() as conn:
        chunk: list[dict[str, object]] = []
        attached: dict[str, list[dict[str, object]]] = {"traces": [], "feedback": [], "judge_scores": []}
        for i in range(n):
            question = f"{rng.choice(QUESTIONS)} (case {i}, account acct{rng.randrange(max(1, n // 20))})"
            signal = rng.choice(SIGNALS)
            at = now - timedelta(minutes=rng.randint(0, 60 * 24 * 60))
            priority = rng.random()
            members, fb_ids = [f"t{i}"], []
            if priority >= rich_from:
                members, fb_ids = _attach(rng, attached, i, question, at)
            chunk.append(
                {
                    "id": new_id(),
                    "cluster_key": f"bench-{i}",
                    "representative_trace_id": members[0],
                    "member_trace_ids": members,
                    "feedback_ids": fb_ids,
                    "count": len(members),
                    "input": [{"role": "system", "content": "Answer politely."}, {"role": "user", "content": question}],
                    "output_text": f"Answer to {question}",
                    "expected_output": None,
                    "signals": {signal: 1.0},
                    "primary_signal": signal,
                    "users": rng.randint(1, 9),
                    "priority": priority,
                    "status": "open" if rng.random() < 0.9 else rng.choice(["accepted", "rejected", "skipped"]),
                    "labels": [],
                    "notes": None,
                    "prompt_name": "support-answer",
                    "prompt_version": rng.randint(1, 4),
                    "model_resolved": rng.choice(MODELS),
                    "created_at": at,
                    "updated_at": at,
                }
            )
            if len(chunk) == 20_000:
                conn.execute(candidates.insert(), chunk)
                chunk.clear()
                print(f"\r  inserted {i + 1:,} / {n:,}", end="", flush=True)
        if chunk:
            conn.execute(candidates.insert(), chunk)
        for name, table in (("traces", traces), ("feedback", feedback), ("judge_scores", judge_scores)):
            for start in range(0, len(attached[name]), 20_000):
                conn.execute(table.insert(), attached[name][start : start + 20_000])
    store.close()
    print(
        f"\r  built {n:,} candidates in {time.perf_counter() - started:.0f} s ({path}); "
        f"{len(attached['traces']):,} traces, {len(attached['feedback']):,} feedback, "
        f"{len(attached['judge_scores']):,} judge scores on the top ~{RICH:,}"
    )


def _attach(
    rng: random.Random, out: dict[str, list[dict[str, object]]], i: int, question: str, at: datetime
) -> tuple[list[str], list[str]]:
    """Member traces (long outputs), feedback and judge scores for one candidate near the top."""
    members = [new_id() for _ in range(MEMBERS)]
    fb_ids = [new_id() for _ in range(FEEDBACK)]
    for k, tid in enumerate(members):
        out["traces"].append(
            {
                "id": tid,
                "created_at": at + timedelta(seconds=k),
                "operation": "chat",
                "session_id": f"s{i}-{k}",
                "user_id": f"u{rng.randrange(5000)}",
                "prompt_name": "support-answer",
                "prompt_version": 1,
                "model_requested": "gpt-4o-mini",
                "model_resolved": MODELS[0],
                "params": {"temperature": 0.2},
                "input": [{"role": "system", "content": "Answer politely."}, {"role": "user", "content": question}],
                "output_text": ANSWER.format(q=question) * 4,
                "prompt_tokens": 40,
                "completion_tokens": 160,
                "total_tokens": 200,
                "latency_ms": 900.0,
                "stream": False,
                "status": "ok",
                "tags": ["bench"],
                "metadata": {},
                "variables": {"question": question},
            }
        )
        for rubric in RUBRICS:
            out["judge_scores"].append(
                {
                    "id": new_id(),
                    "trace_id": tid,
                    "rubric_id": rubric,
                    "rubric_version": 1,
                    "judge_model": "gpt-4o-mini",
                    "score": float(rng.randint(1, 5)),
                    "raw_answer": "Score: 3. Fine.",
                    "parse_status": "ok",
                    "cache_key": f"{tid}-{rubric}",
                    "created_at": at,
                }
            )
    for k, fid in enumerate(fb_ids):
        thumbs = k % 3 == 0
        out["feedback"].append(
            {
                "id": fid,
                "trace_id": members[k % MEMBERS],
                "kind": "explicit" if thumbs else "implicit",
                "signal": "thumbs" if thumbs else rng.choice(SIGNALS[1:5]),
                "value": 0.0 if thumbs else None,
                "text": "That did not answer my question." if k % 5 == 0 else None,
                "strength": 1.0,
                "source": "bench",
                "user_id": f"u{k}",
                "evidence": {},
                "metadata": {},
                "created_at": at,
            }
        )
    return members, fb_ids


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(name: str, values: list[float], target_ms: float | None, cpu: list[float] | None = None) -> str:
    ms = [v * 1000 for v in values]
    p50, p95 = statistics.median(ms), pct(ms, 0.95)
    verdict = "" if target_ms is None else ("ok" if p95 < target_ms else f"OVER {target_ms:g} ms")
    cpu_ms = f"   cpu p50 {statistics.median(cpu) * 1000:5.1f} p95 {pct(cpu, 0.95) * 1000:5.1f}" if cpu else ""
    return f"  {name:<24} n={len(ms):<4} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {max(ms):7.1f} ms{cpu_ms}  {verdict}"


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


async def press(app: TriageApp, pilot: object, key: str, done: Callable[[], bool], label: str | None = None) -> float:
    """Wall time from key to rendered screen; the process CPU time (all threads) goes to CPU[label or key]."""
    char = key if len(key) == 1 else None
    event = events.Key(key, char)
    event.set_sender(app)
    start, cpu = time.perf_counter(), time.process_time()
    app._driver.send_message(event)  # type: ignore[union-attr]
    await _settled(app, pilot, done)
    CPU.setdefault(label or key, []).append(time.process_time() - cpu)
    return time.perf_counter() - start


async def measure(path: Path, reps: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "launch (in process)",
            "next (down)",
            "accept (a)",
            "undo (u)",
            "open detail (enter)",
            "back (esc)",
            "next in detail (])",
            "filter status (t)",
            *(f"search {kind} ({term})" for kind, term in SEARCHES.items()),
        )
    }
    opened: list[tuple[int, int, int]] = []  # members, feedback, judge scores of each candidate opened
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
                await press(app, pilot, "enter", lambda: isinstance(app.screen, DetailScreen))
            )
            opened.append(_attachments(app.screen))
            current = app.screen.candidate_id  # type: ignore[attr-defined]
            results["next in detail (])"].append(
                await press(app, pilot, "right_square_bracket", lambda c=current: app.screen.candidate_id != c)
            )  # type: ignore
            opened.append(_attachments(app.screen))
            results["back (esc)"].append(await press(app, pilot, "escape", lambda: isinstance(app.screen, QueueScreen)))
        for _ in range(max(10, reps // 5)):
            gen = queue.generation
            results["filter status (t)"].append(await press(app, pilot, "t", lambda g=gen: queue.shown_generation > g))
        while queue.flt.status != "open":
            await press(app, pilot, "t", lambda g=queue.generation: queue.shown_generation > g)
        await press(app, pilot, "slash", lambda: app.focused is not None and app.focused.id == "search")
        for _ in range(max(3, reps // 20)):
            for kind, term in SEARCHES.items():  # type it, then delete it, one key at a time
                name = f"search {kind} ({term})"
                for key in [*term, *["backspace"] * len(term)]:
                    gen = queue.generation
                    results[name].append(await press(app, pilot, key, lambda g=gen: queue.shown_generation > g, name))
                await app.workers.wait_for_complete()
        await app.workers.wait_for_complete()
    RICH_SEEN[:] = opened
    return results


RICH_SEEN: list[tuple[int, int, int]] = []


def _attachments(screen: object) -> tuple[int, int, int]:
    detail = getattr(screen, "detail", None)
    if detail is None:
        return (0, 0, 0)
    return (len(detail.members), len(detail.feedback), len(detail.judge_scores))


def _old_like_page(conn: Any, text: str, limit: int = 101) -> list[Any]:
    """The search before the index (workbench before migration 0005): LIKE over five candidate columns."""
    c = candidates.c
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    def like(column: Any) -> Any:
        return type_coerce(column, Text).like(f"%{escaped}%", escape="\\")

    query = (
        select(
            c.id,
            c.priority,
            c.primary_signal,
            c.users,
            c.count,
            c.prompt_name,
            c.prompt_version,
            c.model_resolved,
            c.status,
            c.labels,
            c.created_at,
            c.input,
            func.substr(c.output_text, 1, 400).label("output_head"),
        )
        .where(
            c.status == "open",
            or_(
                c.id == text, like(c.input), like(c.output_text), like(c.notes), like(c.labels), like(c.expected_output)
            ),
        )
        .order_by(c.priority.desc(), c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def store_search(path: Path, reps: int) -> list[str]:
    """Per full term: the indexed search vs the LIKE search before it, interleaved, one page each."""
    store = open_store(path)
    lines = []
    try:
        with store.read() as conn:
            for kind, term in SEARCHES.items():
                new, old = [], []
                for _ in range(reps):
                    start = time.perf_counter()
                    got = queue_page(conn, QueueFilter(text=term), limit=101)
                    new.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    before = _old_like_page(conn, term)
                    old.append(time.perf_counter() - start)
                hits = count_queue(conn, QueueFilter(text=term), cap=1_000_000)
                same = [r.id for r in got] == [r.id for r in before]
                new_ms, old_ms = statistics.median(new) * 1000, statistics.median(old) * 1000
                lines.append(
                    f"  {kind + ' (' + term + ')':<26} {hits:>8,} open matches   indexed p50 {new_ms:7.1f} ms"
                    f"   LIKE before p50 {old_ms:8.1f} ms   x{old_ms / new_ms:6.1f}   same first page: {same}"
                )
    finally:
        store.close()
    return lines


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


def _has_attachments(path: Path) -> bool:
    import sqlite3

    with sqlite3.connect(path) as db:
        try:
            return db.execute("SELECT count(*) FROM traces").fetchone()[0] > 0
        except sqlite3.Error:
            return False


def cold_launch(path: Path) -> float:
    """A new Python process: imports, store open (migration check), first page, first frame."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", COLD.format(root=str(ROOT), path=str(path))], check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip().splitlines()[-1]) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--search-reps", type=int, default=3, help="runs per term of the store-level comparison")
    args = parser.parse_args()
    path = args.db or ROOT / "bench" / "out" / f"tui_{args.n // 1000}k.db"
    _searches(args.n)
    if not args.rebuild and path.exists() and not _has_attachments(path):
        print(f"{path.name} was built by an older version of this bench (no traces on the top candidates): rebuilding")
        args.rebuild = True
    if args.rebuild or not path.exists():
        print(f"building a store with {args.n:,} candidates (cached for next time)")
        build(path, args.n)
    colds = [cold_launch(path) for _ in range(3)]
    load_before = os.getloadavg()[0]
    results = asyncio.run(measure(path, args.reps))
    print(
        f"\ntriage app latency, {args.n:,} candidates, terminal {SIZE[0]}x{SIZE[1]}, store {path.name}, "
        f"{os.cpu_count()} cores, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    print("  wall = key to rendered screen; cpu = CPU time the app used for it (all threads)")
    print(row("launch (new process)", colds, 2000))
    keys = {
        "next (down)": "down",
        "accept (a)": "a",
        "undo (u)": "u",
        "open detail (enter)": "enter",
        "back (esc)": "escape",
        "next in detail (])": "right_square_bracket",
        "filter status (t)": "t",
    }
    for name, values in results.items():
        cpu = CPU.get(keys.get(name, ""), []) if name in keys else CPU.get(name)
        print(row(name, values, 2000 if name.startswith("launch") else 50, cpu))
    searches = [v for name, values in results.items() if name.startswith("search") for v in values]
    print(
        row(
            "search, all keystrokes",
            searches,
            50,
            [x for name in results if name.startswith("search") for x in CPU.get(name, [])],
        )
    )
    rich = [m for m in RICH_SEEN if all(m)]
    print(
        f"  detail opened {len(RICH_SEEN)} times; {len(rich)} with traces, feedback and judge scores "
        f"(at least {min(m[0] for m in rich) if rich else 0} traces, {min(m[1] for m in rich) if rich else 0} "
        f"feedback, {min(m[2] for m in rich) if rich else 0} judge scores each)"
    )
    print(
        "\nsearch at the store, one page of 101 rows, indexed vs the LIKE search it replaced "
        f"({args.search_reps} runs each, interleaved)"
    )
    for line in store_search(path, args.search_reps):
        print(line)


if __name__ == "__main__":
    main()
