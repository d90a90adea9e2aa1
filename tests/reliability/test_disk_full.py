"""Issue 16 item 1: a full disk never kills the app (it used to die of SIGBUS in a page fault).

The spool lives on a 1 MiB tmpfs made by the test; 1,000 calls of ~2 KB each need twice that. Segments
are pre-allocated with fallocate, so a full disk fails when a segment is created, capture stops and
counts the drops, and resumes once ingest has freed the space.
"""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import app_env, run_app


def test_full_disk_drops_and_counts_never_crashes(small_fs: Path, sqlite_url: str, tmp_path: Path):
    result = run_app("fill", sqlite_url, "1000", env=app_env(WORKBENCH_SPOOL=str(small_fs / "spool")), cwd=tmp_path)
    assert result.returncode == 0, f"app died (exit {result.returncode}, -7 = SIGBUS): {result.stderr[-2000:]}"
    full, resumed, closed = (json.loads(line) for line in result.stdout.splitlines())
    assert 0 < full["dropped"] < 1000  # some calls spooled, the rest counted, none crashed the app
    assert "capture paused" in result.stderr  # one clear warning, not one per call
    assert resumed["ingested"] == 1000 - full["dropped"]
    assert resumed["dropped"] == full["dropped"]  # after ingest freed the space, the next 20 calls were spooled
    assert closed["step"] == "closed"

    import workbench
    from workbench.store import traces as trace_rows

    store = workbench.open(sqlite_url, ingest="off").store
    with store.read() as conn:
        assert trace_rows.count_traces(conn) == 1000 - full["dropped"] + 20


def test_spool_limit_bounds_the_spool(tmp_path: Path, sqlite_url: str):
    """Without a small disk: the spool's own bound (spool_limit) stops capture the same way."""
    import workbench
    from tests.openai_fakes import FakeOpenAI, chat_body
    from workbench.capture.spool import spool_bytes

    fake = FakeOpenAI()
    fake.default = chat_body("y" * 4000)
    with workbench.open(sqlite_url, ingest="off", spool_limit=1 << 20, segment_bytes=256 << 10) as wb:
        client = wb.wrap(fake.client())
        for _ in range(600):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
        assert wb.dropped > 0
        assert spool_bytes(wb.spool_dir) <= 1 << 20
