"""Import throughput and round trip (issue 15).

    python bench/import_throughput.py [--calls 10000] [--rounds 3] [--observations 100000]

Part 1, JSONL into SQLite. Each round records ``--calls`` calls through the real wrapper (wb.wrap on
httpx.MockTransport, a fake clock; sessions with regenerations, pushback, thanks, streams, the Responses
API, tool calls, errors, two prompt versions) and then, interleaved:
  - baseline: ``wb.flush()`` - the wrapper's own spool -> store ingest of those calls;
  - import:   ``import_jsonl`` of the export-traces file into a fresh store, in one process;
  - import+worker: the same with a forked parse worker (``--workers 1``).
Printed: traces per wall second and per CPU-second (all threads), and import / ingest ratios.
Target: >= 20,000 traces/s from JSONL into SQLite.
After the rounds: the first store is exported and imported into a fresh store; every column of every
trace is compared, and `mine` (the default detectors) must find the same (signal, trace, value) in both.

Part 2, Langfuse: ``--observations`` generations (half as many traces, a tenth as many scores) served
page by page by a local HTTP server in the shapes of Langfuse's public API; baseline: fetching every page
with the same client without storing anything. Target: 100,000 observations in < 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workbench  # noqa: E402
from tests.import_support import Clock, record_sessions  # noqa: E402
from tests.openai_fakes import FakeOpenAI  # noqa: E402
from workbench.errors import ConfigError  # noqa: E402
from workbench.feedback import SignalConfig  # noqa: E402
from workbench.feedback.mining import mine  # noqa: E402
from workbench.importers.jsonl import export_traces, import_jsonl  # noqa: E402
from workbench.importers.langfuse import LangfuseClient, LangfuseSource, import_langfuse  # noqa: E402
from workbench.store import feedback as feedback_rows  # noqa: E402
from workbench.store import open_store  # noqa: E402
from workbench.store import traces as trace_rows  # noqa: E402

T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per page otherwise


def cpu_seconds() -> float:
    """CPU of every thread of this process plus its finished children (the import's parse worker)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Any) -> tuple[Any, float, float]:
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - wall0, cpu_seconds() - cpu0


def record(url: str, spool: Path, calls: int) -> Any:
    """A Workbench with ``calls`` recorded calls still in its spool (ingest off)."""
    os.environ["WORKBENCH_SPOOL"] = str(spool)
    wb = workbench.open(url, ingest="off", clock=Clock(T0.timestamp()))
    prompts = [
        wb.prompts.register("support", "Answer: {question}"),
        wb.prompts.register("support", "Answer briefly: {question}"),
    ]
    record_sessions(wb, FakeOpenAI(), calls, prompts=prompts)
    return wb


def rows(url: str) -> list[dict[str, Any]]:
    store = open_store(url)
    try:
        with store.read() as conn:
            return [t.model_dump() for t in trace_rows.list_traces(conn, limit=None, newest_first=False)]
    finally:
        store.close()


def signals(url: str) -> set[tuple[str, str, float | None]]:
    store = open_store(url)
    try:
        try:
            mine(store)  # the default detectors, as `workbench mine` runs them
        except ConfigError as exc:  # e.g. learned weights being retrained: say so, use the lexical family
            print(f"default detectors unavailable ({exc}); mining with --detector lexical")
            mine(store, config=SignalConfig().model_copy(update={"detector": "lexical"}))
        with store.read() as conn:
            return {(f.signal, f.trace_id, f.value) for f in feedback_rows.list_feedback(conn, kind="implicit")}
    finally:
        store.close()


def jsonl_part(home: Path, calls: int, rounds: int) -> dict[str, Any]:
    results: dict[str, list[tuple[int, float, float]]] = {"ingest": [], "import": [], "import+worker": []}
    first_url = None
    for r in range(rounds):
        url = f"sqlite:///{home / f'src{r}' / 'workbench.db'}"
        wb = record(url, home / f"spool{r}", calls)
        stats, wall, cpu = timed(wb.flush)
        wb.close()
        results["ingest"].append((stats.traces, wall, cpu))
        first_url = first_url or url
        source = open_store(url)
        export_path = home / f"export{r}.jsonl"
        count, ewall, _ = timed(lambda s=source, p=export_path: export_traces(s, p))
        source.close()
        for mode, workers in (("import", 0), ("import+worker", 1)):
            target = open_store(f"sqlite:///{home / f'dst{r}-{workers}' / 'workbench.db'}")
            report, wall, cpu = timed(lambda t=target, p=export_path, w=workers: import_jsonl(t, p, workers=w))
            target.close()
            results[mode].append((report.imported, wall, cpu))
        print(
            f"round {r + 1}: ingest {stats.traces:,} in {results['ingest'][-1][1]:.2f} s; "
            f"export {count:,} in {ewall:.2f} s; import {results['import'][-1][1]:.2f} s in one process, "
            f"{results['import+worker'][-1][1]:.2f} s with a parse worker"
        )
    summary: dict[str, Any] = {}
    for mode, runs in results.items():
        n = sum(x[0] for x in runs)
        summary[mode] = {
            "traces": n,
            "per_wall_s": n / sum(x[1] for x in runs),
            "per_cpu_s": n / sum(x[2] for x in runs),
        }
    for mode in ("import", "import+worker"):
        rate, cpu_rate = summary[mode]["per_wall_s"], summary[mode]["per_cpu_s"]
        print(
            f"JSONL {mode}: {rate:,.0f} traces/s wall, {cpu_rate:,.0f} per CPU-s; "
            f"vs wrapper ingest ({summary['ingest']['per_wall_s']:,.0f}/s wall, "
            f"{summary['ingest']['per_cpu_s']:,.0f} per CPU-s) = {rate / summary['ingest']['per_wall_s']:.2f}; "
            f"target >= 20,000/s: {'met' if rate >= 20_000 else 'MISSED'}"
        )

    # round trip of the first store: every column, and the same mined signals
    fresh = f"sqlite:///{home / 'roundtrip' / 'workbench.db'}"
    target = open_store(fresh)
    import_jsonl(target, home / "export0.jsonl")
    target.close()
    before, after = rows(first_url), rows(fresh)
    same = len(before) == len(after) and all(a == b for a, b in zip(before, after, strict=True))
    mined_before, mined_after = signals(first_url), signals(fresh)
    kinds: dict[str, int] = {}
    for kind, _, _ in mined_before:
        kinds[kind] = kinds.get(kind, 0) + 1
    print(
        f"round trip: {len(before):,} traces, identical column by column: {same}; mined signals {kinds} "
        f"identical in both stores: {mined_before == mined_after}"
    )
    summary["round_trip"] = {
        "traces": len(before),
        "identical": same,
        "signals": kinds,
        "same_signals": mined_before == mined_after,
    }
    return summary


class GeneratedLangfuse:
    """Pages computed on request: ``n`` generations, ``n // 2`` traces, ``n // 10`` scores."""

    def __init__(self, observations: int) -> None:
        self.n = observations

    def _trace(self, i: int) -> dict[str, Any]:
        at = T0 + timedelta(seconds=20 * i)
        return {
            "id": f"t{i}",
            "timestamp": at.isoformat(),
            "name": "chat",
            "sessionId": f"s{i // 5}",
            "userId": f"u{i % 97}",
            "tags": ["prod"],
            "metadata": {},
            "release": None,
            "version": None,
            "observations": [f"o{2 * i}", f"o{2 * i + 1}"],
            "scores": [],
        }

    def _obs(self, i: int) -> dict[str, Any]:
        start = T0 + timedelta(seconds=10 * i)
        return {
            "id": f"o{i}",
            "traceId": f"t{i // 2}",
            "type": "GENERATION",
            "name": "openai",
            "startTime": start.isoformat(),
            "endTime": (start + timedelta(milliseconds=900)).isoformat(),
            "completionStartTime": None,
            "model": "gpt-4o-mini-2024-07-18",
            "modelParameters": {"temperature": "0.2"},
            "input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"question {i}"}],
            "output": {"role": "assistant", "content": f"An answer to question {i}, in a sentence or two."},
            "usage": {"input": 20, "output": 12, "total": 32, "unit": "TOKENS"},
            "usageDetails": {"input": 20, "output": 12, "total": 32},
            "level": "DEFAULT",
            "statusMessage": None,
            "promptName": "support",
            "promptVersion": 1 + i % 2,
            "metadata": {},
        }

    def _score(self, i: int) -> dict[str, Any]:
        return {
            "id": f"sc{i}",
            "traceId": f"t{5 * i}",
            "observationId": f"o{10 * i}",
            "name": "thumbs",
            "source": "API",
            "dataType": "BOOLEAN",
            "value": i % 2,
            "stringValue": str(bool(i % 2)),
            "timestamp": (T0 + timedelta(seconds=100 * i + 5)).isoformat(),
            "comment": None,
        }

    def __call__(self, request: Any) -> Any:
        from werkzeug import Response

        page, limit = int(request.args.get("page", 1)), int(request.args.get("limit", 50))
        kinds = {
            "/api/public/traces": (self.n // 2, self._trace),
            "/api/public/observations": (self.n, self._obs),
            "/api/public/scores": (self.n // 10, self._score),
            "/api/public/score-configs": (0, None),
        }
        total, make = kinds.get(request.path, (0, None))
        items = [make(i) for i in range((page - 1) * limit, min(total, page * limit))] if make else []
        meta = {"page": page, "limit": limit, "totalItems": total, "totalPages": math.ceil(total / limit)}
        return Response(json.dumps({"data": items, "meta": meta}), content_type="application/json")


def langfuse_part(home: Path, observations: int) -> dict[str, Any]:
    import re

    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request(re.compile(r"^/api/public/.*")).respond_with_handler(GeneratedLangfuse(observations))
    server.start()
    try:
        source = LangfuseSource(server.url_for("/").rstrip("/"), "pk", "sk")

        def fetch_only() -> int:
            client = LangfuseClient(source)
            count = 0
            for path, params in (
                ("/api/public/traces", {}),
                ("/api/public/observations", {"type": "GENERATION"}),
                ("/api/public/scores", {}),
            ):
                for _, items, _ in client.pages(path, {"limit": 100, **params}):
                    count += len(items)
            client.close()
            return count

        fetched, fwall, _ = timed(fetch_only)
        store = open_store(f"sqlite:///{home / 'langfuse' / 'workbench.db'}")
        report, wall, cpu = timed(lambda: import_langfuse(store, source))
        store.close()
    finally:
        server.stop()
    print(
        f"Langfuse: {report.imported:,} generations + {report.feedback:,} scores in {wall:.1f} s "
        f"({report.imported / wall:,.0f} generations/s; cpu {cpu:.1f} s); fetching the same {fetched:,} items "
        f"alone: {fwall:.1f} s (import/fetch = {wall / fwall:.2f}); target 100,000 in < 120 s: "
        f"{'met' if observations >= 100_000 and wall < 120 else 'MISSED' if wall >= 120 else 'not run at full size'}"
    )
    return {
        "generations": report.imported,
        "feedback": report.feedback,
        "wall_s": wall,
        "cpu_s": cpu,
        "fetch_only_wall_s": fwall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--observations", type=int, default=100_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wb-import-"))
    out = {"jsonl": jsonl_part(home, args.calls, args.rounds)}
    if args.observations:
        out["langfuse"] = langfuse_part(home, args.observations)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
