"""kill -9 of `workbench serve` under load: every request that got a 200 is in the store after a restart."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import pytest

from workbench.store import keys as key_rows
from workbench.store import open_store
from workbench.store import traces as trace_rows

from .serve_support import ServeProcess, wait_for

pytestmark = pytest.mark.slow


def _request(n: int, start: int) -> bytes:
    spans = []
    for i in range(start, start + n):
        spans.append(
            {
                "traceId": f"{i:032x}",
                "spanId": f"{i:016x}",
                "name": "chat",
                "kind": 3,
                "startTimeUnixNano": str(1764800000000000000 + i),
                "endTimeUnixNano": str(1764800000100000000 + i),
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                    {"key": "gen_ai.response.id", "value": {"stringValue": f"resp-{i}"}},
                    {
                        "key": "gen_ai.input.messages",
                        "value": {
                            "stringValue": json.dumps(
                                [{"role": "user", "parts": [{"type": "text", "content": f"question {i}"}]}]
                            )
                        },
                    },
                ],
            }
        )
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_under_load_loses_no_acknowledged_span(store_url, tmp_path, workers):
    store = open_store(store_url)
    with store.write() as conn:
        key = key_rows.create_key(conn, "load", ["ingest"])[1]
    env = {"WORKBENCH_SPOOL": str(tmp_path / "spool")}
    if "WORKBENCH_HOME" in os.environ:
        env["WORKBENCH_HOME"] = os.environ["WORKBENCH_HOME"]
    acked: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(0, 10**9, 20))

    def load(url: str) -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                with lock:
                    start = next(counter)
                try:
                    response = client.post(
                        url + "/v1/traces",
                        content=_request(20, start),
                        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    )
                except httpx.HTTPError:
                    continue  # the server died mid-request: not acknowledged, may or may not be stored
                if response.status_code == 200:
                    with lock:
                        acked.extend(range(start, start + 20))

    serve = ServeProcess(store_url, tmp_path, "--workers", str(workers), env=env).__enter__()
    threads = [threading.Thread(target=load, args=(serve.url,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acked) >= 600, timeout=60)
    os.killpg(serve.proc.pid, signal.SIGKILL)  # every serve process at once, mid-load
    serve.proc.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    expected = {f"resp-{i}" for i in acked}
    assert len(expected) >= 600

    with ServeProcess(store_url, tmp_path, env=env):  # the restarted server's ingester picks up the dead spool

        def stored() -> set[str]:
            with store.read() as conn:
                rows = trace_rows.list_traces(conn, limit=10**7)
            return {t.provider_response_id for t in rows}

        deadline = time.monotonic() + 90
        while not expected <= (found := stored()) and time.monotonic() < deadline:
            time.sleep(0.3)
    missing = expected - found
    assert not missing, f"{len(missing)} acknowledged spans lost, e.g. {sorted(missing)[:3]}"
    with store.read() as conn:
        assert trace_rows.count_traces(conn) == len(found)  # and none twice
    store.close()


def test_ctrl_c_stops_serve_and_its_follower_cleanly_with_everything_ingested(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    with store.write() as conn:
        key = key_rows.create_key(conn, "t", ["ingest"])[1]
    serve = ServeProcess(sqlite_url, tmp_path, "--ingest", "process").__enter__()
    response = httpx.post(
        serve.url + "/v1/traces",
        content=_request(3, 7000),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    os.killpg(serve.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    assert serve.proc.wait(timeout=60) == 0
    stderr = serve.proc.stderr.read().decode()
    assert "Traceback" not in stderr, stderr
    with store.read() as conn:
        stored = {t.provider_response_id for t in trace_rows.list_traces(conn, limit=10)}
    assert stored == {"resp-7000", "resp-7001", "resp-7002"}
    store.close()
