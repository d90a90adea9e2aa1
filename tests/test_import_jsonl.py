"""`workbench export-traces` and `workbench import openai-jsonl`: calls recorded by the real wrapper come
back field by field after export + import into a fresh store, and the miner finds the same signals in both;
re-imports add nothing; malformed lines are reported by number and skipped; an interrupted import resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

import workbench
from workbench.feedback import SignalConfig
from workbench.feedback.mining import mine
from workbench.importers.jsonl import import_jsonl
from workbench.store import feedback as feedback_rows
from workbench.store import imports as import_rows
from workbench.store import open_store
from workbench.store import traces as trace_rows

from .conftest import run_cli
from .import_support import Clock, record_sessions
from .openai_fakes import FakeOpenAI

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def all_traces(url: str) -> list[dict]:
    store = open_store(url)
    try:
        with store.read() as conn:
            return [t.model_dump() for t in trace_rows.list_traces(conn, limit=None, newest_first=False)]
    finally:
        store.close()


def signals(url: str) -> set[tuple[str, str, float | None]]:
    store = open_store(url)
    try:
        mine(store, config=SignalConfig().model_copy(update={"detector": "lexical"}))
        with store.read() as conn:
            rows = feedback_rows.list_feedback(conn, kind="implicit")
        return {(r.signal, r.trace_id, r.value) for r in rows}
    finally:
        store.close()


def record(url: str, calls: int) -> None:
    wb = workbench.open(url, background_ingest=False, clock=Clock(T0.timestamp()))
    try:
        prompts = [
            wb.prompts.register("support", "Answer: {question}"),
            wb.prompts.register("support", "Answer briefly: {question}"),
        ]
        assert record_sessions(wb, FakeOpenAI(), calls, prompts=prompts) == calls
        wb.flush()
    finally:
        wb.close()


def line(**fields: object) -> bytes:
    base: dict[str, object] = {
        "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        "response": {
            "id": "chatcmpl-x",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        },
    }
    base.update(fields)
    return orjson.dumps(base)


def write_lines(path: Path, count: int, start: datetime = T0) -> Path:
    path.write_bytes(
        b"".join(
            line(
                ts=(start + timedelta(seconds=i)).isoformat(),
                session_id=f"s{i // 3}",
                response={
                    "id": f"chatcmpl-{i}",
                    "object": "chat.completion",
                    "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {i}"}}],
                },
            )
            + b"\n"
            for i in range(count)
        )
    )
    return path


# ------------------------------------------------------------------------------------------ round trip


def test_export_then_import_gives_the_same_traces_and_the_same_signals(store_url: str, tmp_path: Path) -> None:
    record(store_url, 240)
    out = tmp_path / "traces.jsonl"
    exported = run_cli("--store", store_url, "export-traces", "--out", str(out), "--json", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert orjson.loads(exported.stdout)["exported"] == 240
    assert oct(out.stat().st_mode & 0o777) == "0o600"

    fresh = f"sqlite:///{tmp_path / 'fresh' / 'workbench.db'}"
    assert run_cli("--store", fresh, "init", cwd=tmp_path).returncode == 0
    imported = run_cli("--store", fresh, "import", "openai-jsonl", str(out), "--json", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    report = orjson.loads(imported.stdout)
    assert report["imported"] == 240 and report["skipped"] == {}

    before, after = all_traces(store_url), all_traces(fresh)
    assert len(before) == 240
    assert {t["operation"] for t in before} == {"chat", "responses"}
    assert {t["status"] for t in before} == {"ok", "error"}
    assert any(t["stream"] for t in before) and any(t["tool_calls"] for t in before)
    assert {t["prompt_version"] for t in before} == {1, 2}
    for old, new in zip(before, after, strict=True):
        assert old == new  # every column: ids, times, prompt id/version/hash, tokens, latency, output...

    found = signals(store_url)
    assert {kind for kind, _, _ in found} >= {"regenerate", "pushback", "positive"}
    assert signals(fresh) == found


def test_a_second_import_adds_nothing_and_says_so(store_url: str, tmp_path: Path) -> None:
    open_store(store_url).close()
    path = write_lines(tmp_path / "calls.jsonl", 50)
    first = run_cli("--store", store_url, "import", "openai-jsonl", str(path), "--workers", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "imported 50 traces" in first.stdout
    again = run_cli("--store", store_url, "import", "openai-jsonl", str(path), "--json", cwd=tmp_path)
    assert again.returncode == 0
    assert orjson.loads(again.stdout)["imported"] == 0
    assert orjson.loads(again.stdout)["skipped"] == {"already imported": 50}
    stored = all_traces(store_url)
    assert len(stored) == 50 and stored[0]["created_at"] == T0 and stored[-1]["output_text"] == "answer 49"


def test_foreign_lines_need_only_request_and_response(sqlite_url: str, tmp_path: Path) -> None:
    store = open_store(sqlite_url)
    with store.write() as conn:
        from workbench.store.prompts import register_prompt

        prompt = register_prompt(conn, "support", "Answer: {q}")
    store.close()
    responses_line = orjson.dumps(
        {
            "ts": 1741000000,
            "request": {"model": "gpt-4.1", "input": "Bonjour?", "instructions": "Be brief."},
            "response": {
                "id": "resp_1",
                "object": "response",
                "model": "gpt-4.1-2025-04-14",
                "output": [{"type": "message", "content": [{"type": "output_text", "text": "Salut."}]}],
                "usage": {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6},
            },
            "latency_ms": 420.0,
            "user_id": "u-1",
            "prompt": "support@1",
            "variant": "B",
            "tags": ["old"],
        }
    )
    error_line = orjson.dumps(
        {
            "ts": "2025-03-01T10:00:00Z",
            "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            "response": None,
            "error": {"type": "RateLimitError", "message": "slow down", "status": 429},
        }
    )
    path = tmp_path / "mine.jsonl"
    path.write_bytes(line() + b"\n\n" + responses_line + b"\n" + error_line + b"\n")
    result = run_cli("--store", sqlite_url, "import", "openai-jsonl", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {t["provider_response_id"] or t["error_type"]: t for t in all_traces(sqlite_url)}
    plain, resp, err = rows["chatcmpl-x"], rows["resp_1"], rows["RateLimitError"]
    assert plain["output_text"] == "Hello!" and plain["total_tokens"] == 5 and plain["prompt_name"] is None
    assert resp["operation"] == "responses" and resp["output_text"] == "Salut."
    assert resp["input"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Bonjour?"}]
    assert resp["created_at"] == datetime.fromtimestamp(1741000000, UTC)
    assert (resp["prompt_id"], resp["prompt_version"], resp["prompt_hash"]) == (prompt.id, 1, prompt.content_hash)
    assert resp["latency_ms"] == 420.0 and resp["variant"] == "B" and resp["tags"] == ["old"]
    assert (err["status"], err["http_status"], err["error_message"]) == ("error", 429, "slow down")
    assert err["created_at"] == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ bad input


def test_malformed_lines_are_reported_by_number_and_the_rest_is_kept(sqlite_url: str, tmp_path: Path) -> None:
    open_store(sqlite_url).close()
    path = tmp_path / "calls.jsonl"
    path.write_bytes(
        line(session_id="a")
        + b"\n"
        + b'{"request": {"model": "x", "messages": [\n'  # line 2: cut off
        + line(user_id="u" * 300)  # line 3: too long for the store
        + b"\n"
        + line(ts="yesterday")  # line 4
        + b"\n"
        + orjson.dumps({"request": {"model": "x", "messages": []}})  # line 5: no response
        + b"\n"
        + line(session_id="b", response={"id": "chatcmpl-2", "choices": []})
        + b"\n"
    )
    result = run_cli("--store", sqlite_url, "import", "openai-jsonl", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "imported 2 traces" in result.stdout and "skipped 4" in result.stdout
    err = result.stderr
    assert "line 2: not JSON" in err and "line 3: user_id: 300 characters" in err
    assert "line 4: 'ts'" in err and "line 5: 'response' is missing" in err
    assert "Traceback" not in err
    assert {t["session_id"] for t in all_traces(sqlite_url)} == {"a", "b"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["import", "openai-jsonl", "nope.jsonl"], 2, "no such file: nope.jsonl"),
        (["import", "openai-jsonl", "calls.jsonl", "--since", "someday"], 2, "bad time 'someday'"),
        (["export-traces", "--out", "."], 2, "is a directory"),
        (["export-traces", "--out", "/proc/no/such/dir/x.jsonl"], 7, "cannot write"),
    ],
)
def test_cli_bad_input_is_one_clear_line(
    sqlite_url: str, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    open_store(sqlite_url).close()
    write_lines(tmp_path / "calls.jsonl", 2)
    result = run_cli("--store", sqlite_url, *args, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_missing_store_is_not_found(tmp_path: Path) -> None:
    write_lines(tmp_path / "calls.jsonl", 1)
    result = run_cli(
        "--store", f"sqlite:///{tmp_path / 'none.db'}", "import", "openai-jsonl", "calls.jsonl", cwd=tmp_path
    )
    assert result.returncode == 4 and "no workbench store" in result.stderr


# --------------------------------------------------------------------------- dry run, since, resume


def test_dry_run_writes_nothing_and_since_skips_older_calls(sqlite_url: str, tmp_path: Path) -> None:
    open_store(sqlite_url).close()
    path = write_lines(tmp_path / "calls.jsonl", 30)
    dry = run_cli("--store", sqlite_url, "import", "openai-jsonl", str(path), "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0 and orjson.loads(dry.stdout)["imported"] == 30
    assert all_traces(sqlite_url) == []
    since = (T0 + timedelta(seconds=20)).isoformat()
    real = run_cli("--store", sqlite_url, "import", "openai-jsonl", str(path), "--since", since, "--json", cwd=tmp_path)
    report = orjson.loads(real.stdout)
    assert report["imported"] == 10 and report["skipped"] == {"before --since": 20}
    assert min(t["created_at"] for t in all_traces(sqlite_url)) == T0 + timedelta(seconds=20)
    out = tmp_path / "window.jsonl"
    until = (T0 + timedelta(seconds=25)).isoformat()
    window = run_cli(
        "--store", sqlite_url, "export-traces", "--since", since, "--until", until, "--out", str(out), cwd=tmp_path
    )
    assert window.returncode == 0 and "exported 5 traces" in window.stdout
    assert [orjson.loads(x)["ts"][:19] for x in out.read_bytes().splitlines()] == [
        (T0 + timedelta(seconds=s)).isoformat()[:19] for s in range(20, 25)
    ]


def test_an_interrupted_import_resumes_where_it_stopped(sqlite_url: str, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "calls.jsonl", 1000)
    store = open_store(sqlite_url)
    try:

        def stop(done: int, total: int) -> None:
            raise KeyboardInterrupt  # Ctrl-C right after the first batch committed

        with pytest.raises(KeyboardInterrupt):
            import_jsonl(store, path, batch_size=300, progress=stop)
        with store.read() as conn:
            assert trace_rows.count_traces(conn) == 300
        report = import_jsonl(store, path, batch_size=300)
        assert report.resumed_from == "line 301"
        assert report.imported == 700 and not report.skipped
        with store.read() as conn:
            assert trace_rows.count_traces(conn) == 1000
            assert import_rows.load_state(conn, f"openai-jsonl:{path.resolve()}") is None  # finished
    finally:
        store.close()


def test_an_import_killed_mid_way_loses_nothing_and_resumes(sqlite_url: str, tmp_path: Path) -> None:
    open_store(sqlite_url).close()
    path = write_lines(tmp_path / "big.jsonl", 60_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--store", sqlite_url, "import", "openai-jsonl", str(path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    store = open_store(sqlite_url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with store.read() as conn:
                if import_rows.load_state(conn, f"openai-jsonl:{path.resolve()}") is not None:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, "the import finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        with store.read() as conn:
            stored_before = trace_rows.count_traces(conn)
        report = import_jsonl(store, path)
        with store.read() as conn:
            assert trace_rows.count_traces(conn) == 60_000
        assert report.imported == 60_000 - stored_before
        assert 0 < stored_before < 60_000
        assert report.resumed_from is not None and not report.skipped  # resumed past what was committed
    finally:
        store.close()


def test_a_worker_process_parses_to_the_same_result(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "calls.jsonl", 700)
    with path.open("ab") as handle:
        handle.write(b"{not json\n" + line(user_id="u" * 300) + b"\n" + line(ts="2020-01-01T00:00:00Z") + b"\n")
    results = []
    for workers in (0, 1):
        url = f"sqlite:///{tmp_path / f'w{workers}' / 'workbench.db'}"
        store = open_store(url)
        try:
            report = import_jsonl(store, path, workers=workers, batch_size=128, since=T0 - timedelta(days=1))
        finally:
            store.close()
        results.append((report.to_json() | {"source": None}, all_traces(url)))
    assert results[0] == results[1]
    report = results[0][0]
    assert report["imported"] == 700 and report["skipped"] == {
        "malformed": 1,
        "refused by the store": 1,
        "before --since": 1,
    }
