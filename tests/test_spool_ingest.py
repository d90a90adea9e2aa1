"""Crash safety, concurrency, corruption and outages: every accepted record reaches the store once."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

import workbench
from workbench.capture.ingest import ingest_spool
from workbench.capture.spool import DATA_START, SpoolWriter, encode_record, list_segments, scan_segment
from workbench.errors import SchemaTooNewError, SpoolError, StoreUnavailableError
from workbench.store import open_store, schema
from workbench.store import traces as trace_rows

from .conftest import run_cli
from .openai_fakes import FakeOpenAI

REPO = Path(__file__).resolve().parents[1]


def count(store) -> int:
    with store.read() as conn:
        return trace_rows.count_traces(conn)


def _app(url: str, n: int, *extra: str, tag: str = "app") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.capture_app", url, str(n), "--tag", tag, *extra],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=os.getcwd(),
    )


def test_sigkill_loses_nothing(store_url):
    proc = _app(store_url, 500, "--hang")
    assert proc.stdout.readline().strip() == "done 500"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    store = open_store(store_url)
    stats = ingest_spool(store, workbench.workbench.spool_dir(store))
    assert stats.traces == 500 and count(store) == 500
    assert list_segments(workbench.workbench.spool_dir(store)) == []  # dead writer's segment finished and removed


def test_four_processes_one_store(store_url):
    procs = [_app(store_url, 300, tag=f"p{i}") for i in range(4)]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "done 300" in out
    store = open_store(store_url)
    ingest_spool(store, workbench.workbench.spool_dir(store))  # anything a process left behind
    assert count(store) == 1200
    with store.read() as conn:
        tags = conn.execute(sa.select(schema.traces.c.tags)).scalars().all()
    assert sorted({t[0] for t in tags}) == ["p0", "p1", "p2", "p3"]


def test_reingest_creates_no_duplicates(sqlite_url, tmp_path):
    with workbench.open(sqlite_url, background_ingest=False) as wb:
        client = wb.wrap(FakeOpenAI().client())
        for _ in range(20):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        wb._writer.flush()
        (segment,) = list_segments(wb.spool_dir)
        backup = tmp_path / "backup.wbspool"
        shutil.copy(segment, backup)
        assert wb.flush().traces == 20
        # The same segment again, and its offset forgotten: everything is re-read, nothing duplicated.
        shutil.copy(backup, segment)
        with wb.store.write() as conn:
            conn.execute(schema.spool_offsets.delete())
        assert wb.flush().traces == 20
        assert count(wb.store) == 20


def test_corrupt_record_is_quarantined_neighbours_ingested(sqlite_url, caplog):
    store = open_store(sqlite_url)
    spool = workbench.workbench.spool_dir(store)
    with workbench.open(sqlite_url, background_ingest=False) as wb:
        client = wb.wrap(FakeOpenAI().client())
        for i in range(3):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
        wb._writer.flush()
        (segment,) = list_segments(spool)
        records = scan_segment(segment, DATA_START, live=False).records
        data = bytearray(segment.read_bytes())
        middle = records[1]
        data[(middle.offset + middle.end) // 2] ^= 0xFF  # corrupt body: CRC mismatch, length intact
        segment.write_bytes(bytes(data))
        with caplog.at_level(logging.WARNING, logger="workbench"):
            stats = ingest_spool(store, spool)
    assert stats.traces == 2 and stats.quarantined == 1
    assert count(store) == 2
    assert {p.suffix for p in (spool / "quarantine").iterdir()} == {".bad", ".why"}
    assert "quarantined" in caplog.text
    assert list_segments(spool) == []


def test_store_locked_capture_keeps_spooling_then_catches_up(sqlite_url, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SQLITE_BUSY_MS", "100")
    with workbench.open(sqlite_url, background_ingest=False) as wb:
        client = wb.wrap(FakeOpenAI().client())
        path = sqlite_url.removeprefix("sqlite:///")
        import sqlite3

        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            for _ in range(10):
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            with pytest.raises(StoreUnavailableError, match="locked"):
                wb.flush()
            assert wb._ingester.run_once(wait=True) is False and "locked" in wb._ingester.last_error
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert wb.flush().traces == 10
        assert count(wb.store) == 10


def test_background_ingester_moves_records(sqlite_url):
    done = threading.Event()
    with workbench.open(sqlite_url, ingest_interval=0.05) as wb:
        client = wb.wrap(FakeOpenAI().client())
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        for _ in range(200):
            if count(wb.store) == 1:
                done.set()
                break
            threading.Event().wait(0.05)
    assert done.is_set()


def test_newer_schema_is_refused(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    with store.write() as conn:
        conn.execute(schema.migrations_table.insert().values(name="9999_from_the_future", applied_at=sa.func.now()))
    store.close()
    with pytest.raises(SchemaTooNewError, match=r"newer workbench.*9999_from_the_future"):
        open_store(sqlite_url)
    result = run_cli("--store", sqlite_url, "traces", cwd=tmp_path)
    assert result.returncode == 5
    assert "newer workbench" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_migrated_schema_matches_schema_module(store_url):
    store = open_store(store_url)
    inspector = sa.inspect(store.engine)
    for table in schema.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        assert {i.name for i in table.indexes} <= indexes, table.name
    # Opening again is a no-op, not an error.
    open_store(store_url).close()


def test_unreadable_spool_is_a_clear_error(sqlite_url, tmp_path):
    spool = tmp_path / "spool-file"
    spool.write_text("not a directory")
    with pytest.raises(SpoolError, match="spool-file"):
        SpoolWriter(spool / "sub")
    result = run_cli("--store", sqlite_url, "ingest", cwd=tmp_path, env={"WORKBENCH_SPOOL": str(spool)})
    assert result.returncode != 0 and "spool" in result.stderr and "Traceback" not in result.stderr


def test_bad_store_urls_are_one_line_errors(tmp_path):
    for url, code in (("nosuchdb://x", 2), ("postgresql+psycopg://nobody@127.0.0.1:1/none", 5)):
        result = run_cli("--store", url, "traces", cwd=tmp_path)
        assert result.returncode == code, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_dead_writer_torn_record_before_unwritten_space(sqlite_url):
    """A writer killed mid-header leaves a torn record and its pre-sized zero tail: both handled."""
    store = open_store(sqlite_url)
    spool = workbench.workbench.spool_dir(store)
    with workbench.open(sqlite_url, background_ingest=False) as wb:
        client = wb.wrap(FakeOpenAI().client())
        for i in range(2):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
        wb._writer.flush()
        (sealed,) = list_segments(spool)
        good = sealed.read_bytes()
        sealed.unlink()
        wb._closed = True
    torn = encode_record(b'{"v":1,"id":"torn"}\n{"id": "chatcmpl-x"}')
    torn = torn[:6] + b"\xff" * 4 + torn[10:]  # header half-written: length and CRC do not match
    dead = spool / "00000000000000000000000000-999999.wbspool.open"  # nobody holds its lock
    dead.write_bytes(good + torn + b"\0" * 4096)
    stats = ingest_spool(store, spool)
    assert (stats.traces, stats.quarantined) == (2, 1)
    assert (spool / "quarantine" / f"{dead.name.removesuffix('.open')}.{len(good)}.bad").read_bytes() == torn.rstrip(
        b"\0"
    )
    assert list_segments(spool) == []


def test_import_workbench_is_light():
    """Issue 12: `import workbench` in an app pulls in none of the heavy libraries until they are used."""
    code = (
        "import sys, workbench\n"
        "heavy = [m for m in ('sqlalchemy', 'numpy', 'scipy', 'datasets', 'textual', 'pydantic', 'openai')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_process_ingest_runs_beside_the_app_and_ends_with_it(sqlite_url):
    """ingest="process": a sidecar follows the spool (the app does no parsing or inserting) and exits on close."""
    with workbench.open(sqlite_url, ingest="process", ingest_interval=0.05) as wb:
        sidecar = wb._sidecar
        assert sidecar is not None and sidecar.poll() is None
        client = wb.wrap(FakeOpenAI().client())
        for _ in range(5):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        for _ in range(300):
            if count(wb.store) == 5:
                break
            threading.Event().wait(0.05)
        assert count(wb.store) == 5
    assert sidecar.wait(timeout=10) is not None


def test_sidecar_of_a_killed_app_ingests_what_it_left_and_exits(sqlite_url, tmp_path):
    code = (
        "import sys, time, workbench\n"
        "from tests.openai_fakes import FakeOpenAI\n"
        f"wb = workbench.open({sqlite_url!r}, ingest='process', ingest_interval=0.05)\n"
        "c = wb.wrap(FakeOpenAI().client())\n"
        "for _ in range(40): c.chat.completions.create(model='m', messages=[{'role': 'user', 'content': 'x'}])\n"
        "print(wb._sidecar.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    sidecar = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for _ in range(400):  # it notices its app is gone, ingests the rest, exits
        try:
            os.kill(sidecar, 0)
        except ProcessLookupError:
            break
        threading.Event().wait(0.05)
    else:
        raise AssertionError("the sidecar outlived its app")
    assert count(open_store(sqlite_url)) == 40


def test_cli_ingest_follow(sqlite_url, tmp_path):
    """`workbench ingest --follow` as a sidecar: ingests while the app spools, stops cleanly on SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    follower = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--store", sqlite_url, "ingest", "--follow", "--interval", "0.05"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with workbench.open(sqlite_url, ingest="off") as wb:
            client = wb.wrap(FakeOpenAI().client())
            for _ in range(12):
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            for _ in range(400):
                if count(wb.store) == 12:
                    break
                threading.Event().wait(0.05)
            assert count(wb.store) == 12
    finally:
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert "ingested" in out and "Traceback" not in err


@pytest.mark.parametrize("policy", ["always", "never"])
def test_fsync_policies_store_everything(sqlite_url, policy):
    with workbench.open(sqlite_url, ingest="off", fsync=policy) as wb:
        client = wb.wrap(FakeOpenAI().client())
        for _ in range(30):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert wb.flush().traces == 30


def test_bad_ingest_mode_is_a_config_error(sqlite_url):
    with pytest.raises(workbench.WorkbenchError, match="ingest must be one of"):
        workbench.open(sqlite_url, ingest="sometimes")


# -- fast ingest: the same rows whatever the path, exactly once, indexes intact ----------------------------------

_CHAT = (
    b'{"id":"chatcmpl-a","object":"chat.completion","model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_9",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Paris \xc3\xa9t\xc3\xa9"},'
    b'"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}'
)
_TOOL = (
    b'{"id":"chatcmpl-t","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,'
    b'"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\\"x\\":1}"}}]}}]}'
)
_SSE = (
    b'data: {"id":"chatcmpl-s","model":"m2","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"id":"chatcmpl-s","choices":[{"index":0,"delta":{"content":"lo"}}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\ndata: [DONE]\n\n'
)
_RESPONSES = (
    b'{"id":"resp_1","model":"gpt-4.1","output":[{"type":"message","content":[{"type":"output_text","text":"ok"}]}],'
    b'"usage":{"input_tokens":4,"output_tokens":1,"total_tokens":5}}'
)
_MESSAGES = (
    b'{"id":"msg_1","model":"claude-x","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",'
    b'"usage":{"input_tokens":5,"cache_read_input_tokens":2,"output_tokens":3}}'
)


def _fixed_records() -> list[tuple[dict, bytes]]:
    """Spooled records of every shape ingest meets: chat (text, tools, stream, error, cancelled), responses,
    Anthropic messages, a gzip body, prompt context, tags, metadata, a capture error, non-ASCII text."""
    import gzip

    base = {"v": 1, "base": "http://fake/v1/", "lat": 12.5, "status": 200}
    req = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Quelle est la capitale ?"}]}
    ctx = {
        "session_id": "s-1",
        "user_id": "u-\u00e9",
        "parent_id": None,
        "prompt": ["01HZXPROMPT000000000000000", "greet", 3, "ab" * 32],
        "variables": {"name": "Zo\u00eb", "n": 2},
        "variant": "B",
        "tags": ["t1", "t2"],
        "metadata": {"k": [1, 2.5, None], "nested": {"a": True}},
    }
    records = [
        ({**base, "op": "chat", "req": {**req, "temperature": 0.2}, "ctx": ctx}, _CHAT),
        ({**base, "op": "chat", "req": req}, _TOOL),
        ({**base, "op": "chat", "req": {**req, "stream": True}, "stream": True, "ttft": 3.25}, _SSE),
        ({**base, "op": "chat", "req": req, "stream": True, "end": "cancelled"}, _SSE[:90]),
        ({**base, "op": "chat", "req": req, "err": {"type": "RateLimitError", "message": "slow", "status": 429}}, b""),
        (
            {**base, "op": "responses", "req": {"model": "gpt-4.1", "input": "hi", "instructions": "be brief"}},
            _RESPONSES,
        ),
        (
            {**base, "op": "messages", "req": {"model": "claude-x", "system": "sys", "messages": [], "top_k": None}},
            _MESSAGES,
        ),
        ({**base, "op": "chat", "req": req, "enc": "gzip"}, gzip.compress(_CHAT)),
        ({**base, "op": "chat", "req": req, "capture_error": "request not JSON", "ctx": {"tags": []}}, _CHAT),
        ({**base, "op": "chat", "req": req}, b"{not json"),
    ]
    out = []
    for i, (meta, body) in enumerate(records):
        meta = {**meta, "id": f"01J{i:023d}", "ts": 1_750_000_000.0 + i * 0.123457}
        out.append((meta, body))
    return out


def _write_fixed_spool(directory: Path, copies: int = 1) -> list[tuple[dict, bytes]]:
    import orjson

    writer = SpoolWriter(directory, max_segment_bytes=4096)  # several segments
    written = []
    for copy in range(copies):
        for meta, body in _fixed_records():
            meta = {**meta, "id": f"01J{copy:03d}{meta['id'][-20:]}"}
            assert writer.append(orjson.dumps(meta), body)
            written.append((meta, body))
    writer.close()
    return written


def _stored(store) -> list[dict]:
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(schema.traces).order_by(schema.traces.c.id))]


def _index_sql(store) -> list[str]:
    with store.read() as conn:
        return sorted(
            conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'traces' AND sql IS NOT NULL"
            ).scalars()
        )


@pytest.mark.parametrize("rebuild", [False, True], ids=["incremental", "rebuild"])
def test_a_fixed_spool_is_stored_as_the_parser_reads_it(store_url, tmp_path, rebuild):
    from workbench.capture.parse import record_to_row

    spool = tmp_path / "spool"
    written = _write_fixed_spool(spool, copies=3)
    backup = {p.name: p.read_bytes() for p in list_segments(spool)}
    store = open_store(store_url)
    stats = ingest_spool(store, spool, rebuild_indexes=rebuild, batch=7)
    assert (stats.traces, stats.quarantined) == (len(written), 0)
    assert list_segments(spool) == []
    expected = sorted((record_to_row(meta, body) for meta, body in written), key=lambda r: r["id"])
    stored = _stored(store)
    assert stored == expected
    assert stored[0]["output_text"] == "Paris \u00e9t\u00e9" and stored[0]["prompt_version"] == 3
    assert stored[-1]["status"] == "error" and stored[-1]["error_type"] == "ParseError"
    # Every other trace lost, the segments read again: batches that mix stored and missing traces (on
    # PostgreSQL the direct COPY fails on the key and the batch is staged) end with each trace once.
    with store.write() as conn:
        conn.execute(schema.traces.delete().where(schema.traces.c.id.in_([r["id"] for r in expected[::2]])))
    for name, data in backup.items():
        (spool / name).write_bytes(data)
    ingest_spool(store, spool, rebuild_indexes=rebuild, batch=7)
    assert _stored(store) == expected


def test_rebuild_restores_the_same_indexes_and_reingest_adds_nothing(sqlite_url, tmp_path):
    fresh = _index_sql(open_store(f"sqlite:///{tmp_path / 'fresh.db'}"))
    assert len(fresh) == 5
    store = open_store(sqlite_url)
    spool = tmp_path / "spool"
    _write_fixed_spool(spool, copies=4)
    backup = {p.name: p.read_bytes() for p in list_segments(spool)}
    first = ingest_spool(store, spool, rebuild_indexes=True, batch=5)
    assert first.traces == 40 and first.removed_segments == len(backup)
    assert _index_sql(store) == fresh
    # The same segments again with their offsets gone: every record is read again, none stored twice.
    for name, data in backup.items():
        (spool / name).write_bytes(data)
    again = ingest_spool(store, spool, rebuild_indexes=True)
    assert again.traces == 40 and len(_stored(store)) == 40
    assert _index_sql(store) == fresh
    with store.read() as conn:  # the query planner uses them again
        plan = " ".join(
            str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN SELECT id FROM traces WHERE user_id = 'x'")
        )
    assert "ix_traces_user" in plan


def test_a_failure_inside_a_rebuild_rolls_back_rows_offsets_and_the_index_drop(sqlite_url, tmp_path):
    import orjson

    store = open_store(sqlite_url)
    spool = tmp_path / "spool"
    written = _write_fixed_spool(spool, copies=2)
    meta, body = written[0]
    writer = SpoolWriter(spool)
    writer.append(orjson.dumps({**meta, "id": "01JPOISON00000000000000000", "ctx": {"user_id": "u" * 201}}), body)
    writer.close()
    (spool / "quarantine").write_bytes(b"")  # a file where the quarantine directory goes: setting aside fails
    with pytest.raises(OSError):
        ingest_spool(store, spool, rebuild_indexes=True, batch=3)
    assert _stored(store) == []
    with store.read() as conn:
        assert trace_rows.load_offsets(conn) == {}
    assert len(_index_sql(store)) == 5
    assert len(list_segments(spool)) > 1  # nothing deleted
    (spool / "quarantine").unlink()
    stats = ingest_spool(store, spool, rebuild_indexes=True, batch=3)
    assert (stats.traces, stats.rejected) == (20, 1)
    assert len(_stored(store)) == 20 and len(_index_sql(store)) == 5
    assert list_segments(spool) == []


def test_a_large_backlog_builds_the_indexes_once_a_small_one_keeps_them(sqlite_url, tmp_path):
    import orjson

    from workbench.capture import ingest

    store = open_store(sqlite_url)
    (meta, body), *_ = _fixed_records()
    small, large = tmp_path / "small", tmp_path / "large"
    for directory, n, start in ((small, 100, 0), (large, ingest.REBUILD_MIN_ROWS + 1_000, 100)):
        writer = SpoolWriter(directory)
        for i in range(start, start + n):
            assert writer.append(orjson.dumps({**meta, "id": f"01K{i:023d}"}), body)
        writer.close()
    first = ingest_spool(store, small)
    assert (first.traces, first.index_rebuilds) == (100, 0)
    second = ingest_spool(store, large)
    assert (second.traces, second.index_rebuilds) == (ingest.REBUILD_MIN_ROWS + 1_000, 1)
    assert len(_stored(store)) == ingest.REBUILD_MIN_ROWS + 1_100
    assert len(_index_sql(store)) == 5
