"""Issue 16 item 2: one bad row never stops ingest. It is moved to spool/quarantine/ with its reason,
the rest of its batch commits, and `workbench ingest` says so in one line (SQLite and PostgreSQL)."""

from __future__ import annotations

import os

import orjson

import workbench
from workbench.capture.spool import SpoolWriter
from workbench.store import traces as trace_rows

from ..conftest import run_cli
from ..openai_fakes import FakeOpenAI, chat_body

GOOD = 5


def _record(writer: SpoolWriter, **ctx: object) -> None:
    """A record as a writer spools it, with context values the wrapper's own checks would refuse (an older
    or foreign writer, or a future bug): ingest must cope whatever the spool holds."""
    from workbench.ids import new_id

    meta = {
        "v": 1,
        "id": new_id(),
        "ts": 1_700_000_000.0,
        "op": "chat",
        "base": "http://fake/v1/",
        "ctx": ctx,
        "req": {"model": "m", "messages": [{"role": "user", "content": "q"}]},
        "status": 200,
        "lat": 1.0,
    }
    writer.append(orjson.dumps(meta), orjson.dumps(chat_body()))


def test_poison_rows_are_quarantined_the_rest_is_stored(store_url, tmp_path):
    fake = FakeOpenAI()
    usage_31 = chat_body()
    usage_31["usage"]["prompt_tokens"] = 2**31
    usage_63 = chat_body()
    usage_63["usage"]["completion_tokens"] = 2**63
    fake.push(chat_body(), chat_body("a\u0000b"), chat_body(), usage_31, chat_body(), usage_63, chat_body())
    with workbench.open(store_url, ingest="off") as wb:
        client = wb.wrap(fake.client())
        for _ in range(7):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
        client.chat.completions.create(model="m" * 300, messages=[{"role": "user", "content": "q"}])
        _record(wb._writer, session_id="s" * 201)
        _record(wb._writer, user_id="u" * 300)
        _record(wb._writer, parent_id="p" * 40)
        _record(wb._writer, session_id="fine")
        wb._writer.flush()
        spool = wb.spool_dir
        env = {"WORKBENCH_SPOOL": str(spool)}
        if os.environ.get("WORKBENCH_HOME"):
            env["WORKBENCH_HOME"] = os.environ["WORKBENCH_HOME"]
        result = run_cli("--store", store_url, "ingest", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert "ingested 5 traces" in result.stdout
        warning = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(warning) == 1 and "quarantined 7 records" in warning[0], result.stderr
        assert "invalid row: output_text" in warning[0]
        with wb.store.read() as conn:
            assert trace_rows.count_traces(conn) == 5
        reasons = sorted(p.read_text() for p in (spool / "quarantine").glob("*.why"))
        assert len(reasons) == 7
        joined = "".join(reasons)
        for expected in (
            "output_text: contains a NUL character",
            "prompt_tokens: 2147483648 is out of",
            "completion_tokens: 9223372036854775808 is out of",
            "model_requested: 300 characters",
            "session_id: 201 characters",
            "user_id: 300 characters",
            "parent_id: 40 characters",
        ):
            assert expected in joined, joined
        # The spool is done: later calls from any process are not held back by the bad rows.
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "after"}])
        assert wb.flush().traces == 1


def test_the_store_refusing_a_row_anyway_sets_only_that_row_aside(store_url):
    """Defence in depth: a row the checks let through but the database refuses (here: an id already
    used by another table's constraint is not possible, so a NOT NULL created_at) goes aside alone."""
    import datetime as dt

    with workbench.open(store_url, ingest="off") as wb:
        store = wb.store
        good = {
            "id": "0" * 25 + "1",
            "created_at": dt.datetime.now(dt.UTC),
            "operation": "chat",
            "stream": False,
            "status": "ok",
            "params": {},
            "input": [],
            "tags": [],
            "metadata": {},
        }
        bad = {**good, "id": "0" * 25 + "2", "created_at": None}
        with store.write() as conn:
            refused = trace_rows.insert_traces(conn, [good, bad, {**good, "id": "0" * 25 + "3"}])
        assert [index for index, _ in refused] == [1]
        assert "created_at" in refused[0][1] or "null" in refused[0][1].lower()
        with store.read() as conn:
            assert trace_rows.count_traces(conn) == 2
