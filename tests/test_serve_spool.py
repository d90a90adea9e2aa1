"""The serve process's spool writer rotates ahead (a spare segment swapped in under the lock, full segments
sealed by a helper thread): every record still reaches the store, in a clean shutdown and after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from workbench.capture import otlp
from workbench.capture.ingest import ingest_spool
from workbench.capture.spool import OPEN_SUFFIX, iter_payloads, list_segments
from workbench.serve.spool import RotatingAheadWriter
from workbench.store import open_store
from workbench.store import traces as trace_rows

SEGMENT = 16 << 10  # small segments: a rotation every ~15 records


def _records(n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    spans = [
        {
            "traceId": f"{i + 1:032x}",
            "spanId": f"{i + 1:016x}",
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
                    "value": {"stringValue": json.dumps([{"role": "user", "content": f"question {i} " * 40}])},
                },
            ],
        }
        for i in range(start, start + n)
    ]
    batch = otlp.spool_records_json({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    assert len(batch.records) == n
    return batch.records


def _trace_count(url: str) -> int:
    store = open_store(url)
    try:
        with store.read() as conn:
            return trace_rows.count_traces(conn)
    finally:
        store.close()


def test_rotations_are_swaps_and_every_record_is_stored(sqlite_url, tmp_path):
    spool = tmp_path / "spool"
    writer = RotatingAheadWriter(spool, max_segment_bytes=SEGMENT)
    writer.start()
    for head, body in _records(400):
        assert writer.wait_spare(timeout=10)
        assert writer.append(head, body)
    # Before any flush every record is readable (segments waiting to be sealed are open segments).
    assert len(list(iter_payloads(spool))) == 400
    writer.close()
    assert writer.rotations > 10
    assert writer.sync_rotations == 0  # each rotation was a swap to a spare, none made on the request path
    assert writer.dropped == 0
    assert not [p for p in spool.iterdir() if p.name.endswith(OPEN_SUFFIX)]  # all sealed, the spare removed
    store = open_store(sqlite_url)
    try:
        ingest_spool(store, spool)
    finally:
        store.close()
    assert _trace_count(sqlite_url) == 400
    assert list_segments(spool) == []


def test_a_full_spool_still_drops_and_counts(tmp_path):
    writer = RotatingAheadWriter(tmp_path / "spool", max_segment_bytes=SEGMENT, limit_bytes=3 * SEGMENT)
    writer.start()
    appended = sum(writer.append(head, body) for head, body in _records(200))
    writer.close()
    assert 0 < appended < 200
    assert writer.dropped == 200 - appended
    assert writer.last_error is not None and "limit" in writer.last_error
    assert len(list(iter_payloads(tmp_path / "spool"))) == appended


CHILD = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_serve_spool import _records
from workbench.serve.spool import RotatingAheadWriter
writer = RotatingAheadWriter(Path(sys.argv[1]), max_segment_bytes=16 << 10)
writer.start()
for head, body in _records(300):
    assert writer.wait_spare(timeout=10)
    assert writer.append(head, body)
print(writer.rotations, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_after_swaps_loses_no_appended_record(sqlite_url, tmp_path):
    spool = tmp_path / "spool"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(spool), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert int(child.stdout) > 10  # killed after many swaps, with a spare made
    store = open_store(sqlite_url)
    try:
        ingest_spool(store, spool)
    finally:
        store.close()
    assert _trace_count(sqlite_url) == 300
