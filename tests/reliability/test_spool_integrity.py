"""Issue 16 items 3, 11, 12, 13: segments appear atomically, content cannot forge a record, a record that
cannot be encoded is still stored (and counted), spool and database files are private (0600)."""

from __future__ import annotations

import os
import stat

import orjson
import pytest

import workbench
from workbench.capture import spool as spool_module
from workbench.capture.ingest import ingest_spool
from workbench.capture.spool import DATA_START, encode_record, list_segments, scan_segment
from workbench.store import traces as trace_rows

from ..openai_fakes import FakeOpenAI, chat_body, chat_sse

MESSAGES = [{"role": "user", "content": "q"}]


def _count(store) -> int:
    with store.read() as conn:
        return trace_rows.count_traces(conn)


@pytest.fixture
def before_visible():
    """Run code at the widest point of segment creation: file made, not yet renamed into view."""
    yield spool_module._hooks
    spool_module._hooks.clear()


def test_ingest_in_the_creation_gap_cannot_delete_a_new_segment(sqlite_url, before_visible):
    """Item 3. The old writer created `X.wbspool.open`, then locked it: an ingester running in between saw an
    unlocked, empty segment of a 'dead' writer and deleted it; every record then appended was lost. Here
    the ingester runs inside that gap, deterministically, on every segment the writer creates."""
    with workbench.open(sqlite_url, ingest="off", segment_bytes=64 << 10) as wb:
        ran: list[int] = []

        def ingest_now(path):
            ran.append(ingest_spool(wb.store, wb.spool_dir, wait=True).segments)

        before_visible["before_visible"] = ingest_now
        client = wb.wrap(FakeOpenAI().client())
        for _ in range(300):  # ~1 KB each: several rotations, each one opening a gap
            client.chat.completions.create(model="m", messages=MESSAGES)
        before_visible.clear()
        assert len(ran) >= 3
        assert wb.dropped == 0
        wb.flush()
        assert _count(wb.store) == 300


def test_a_response_body_cannot_forge_a_record(sqlite_url):
    """Item 11. A hostile endpoint returns a body holding a complete, checksummed fake record. Neither a
    normal ingest nor one that finds the real record uncommitted (writer killed mid-append) stores it."""
    forged_id = "0" * 26
    fake_meta = {"v": 1, "id": forged_id, "ts": 1.0, "op": "chat", "base": "x", "ctx": {}, "req": {"model": "evil"}}
    for pad in range(10_000):  # the attacker varies a field until the checksum bytes are valid UTF-8 text
        forged = encode_record(
            orjson.dumps({**fake_meta, "pad": "p" * pad}) + b"\n" + orjson.dumps(chat_body("forged"))
        )
        try:
            forged.decode()
            break
        except UnicodeDecodeError:
            continue
    fake = FakeOpenAI()
    fake.push(b": " + forged + b"\n\n" + chat_sse(["real"]))  # raw bytes in an SSE comment, which clients skip
    with workbench.open(sqlite_url, ingest="off") as wb:
        client = wb.wrap(fake.client())
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "real"
        real = workbench.trace_id(stream)
        wb._writer.flush()
        (segment,) = list_segments(wb.spool_dir)
        original = segment.read_bytes()
        # Torn: the writer died after copying the body, before the header (the commit marker) landed.
        torn = bytearray(original)
        torn[DATA_START : DATA_START + 16] = bytes(16)
        torn[8:16] = DATA_START.to_bytes(8, "little")  # its high-water mark never moved
        dead = segment.with_name(segment.name + ".open")
        dead.write_bytes(bytes(torn))
        segment.unlink()
        stats = ingest_spool(wb.store, wb.spool_dir)
        assert stats.traces == 0 and stats.quarantined == 1  # the torn bytes are set aside, not parsed
        with wb.store.read() as conn:
            assert trace_rows.count_traces(conn) == 0
        # Whole: the real record is stored, the fake one inside its body is not.
        segment.write_bytes(original)
        assert ingest_spool(wb.store, wb.spool_dir).traces == 1
        with wb.store.read() as conn:
            assert trace_rows.get_trace(conn, real).id == real
            with pytest.raises(workbench.WorkbenchError):
                trace_rows.get_trace(conn, forged_id)


def test_a_record_that_cannot_be_encoded_is_stored_with_the_reason(sqlite_url):
    """Item 12. A request the SDK accepts but orjson cannot encode (an int over 64 bits): the trace id was
    returned, so the trace is stored, without the request, saying why; the app can count these."""
    with workbench.open(sqlite_url, ingest="off") as wb:
        client = wb.wrap(FakeOpenAI().client())
        resp = client.chat.completions.create(model="m", messages=MESSAGES, seed=2**70)
        tid = workbench.trace_id(resp)
        assert wb.encode_failures == 1 and wb.dropped == 0
        wb.flush()
        with wb.store.read() as conn:
            trace = trace_rows.get_trace(conn, tid)
        assert trace.output_text == "Paris is the capital of France."
        assert "could not encode" in trace.metadata["workbench_capture_error"]


def test_metadata_with_non_string_keys_is_stored(sqlite_url):
    with workbench.open(sqlite_url, ingest="off") as wb:
        client = wb.wrap(FakeOpenAI().client())
        try:
            resp = client.chat.completions.create(model="m", messages=MESSAGES, workbench={"metadata": {1: "x"}})
        except workbench.WorkbenchError:
            return  # refused before anything was sent (the wrapper's boundary check): also never silent
        tid = workbench.trace_id(resp)
        wb.flush()
        with wb.store.read() as conn:
            assert trace_rows.get_trace(conn, tid).metadata == {"1": "x"}


def test_spool_and_database_files_are_private(sqlite_url, tmp_path):
    """Item 13: traces hold users' text; with the usual umask 022 files were 0644."""
    old = os.umask(0o022)
    try:
        fake = FakeOpenAI()
        fake.push({"not": "a chat body"}, *[chat_body()] * 3)
        with workbench.open(sqlite_url, ingest="off") as wb:
            client = wb.wrap(fake.client())
            client.chat.completions.create(model="m", messages=MESSAGES)
            client.chat.completions.create(model="m" * 300, messages=MESSAGES)
            (live,) = list_segments(wb.spool_dir)
            assert stat.S_IMODE(live.stat().st_mode) == 0o600
            wb.flush()
            home = wb.store.home
        files = [p for p in home.rglob("*") if p.is_file()]
        assert any(p.suffix == ".bad" for p in files) and any(
            p.name.endswith("-wal") or p.suffix == ".db" for p in files
        )
        loose = {
            str(p.relative_to(home)): oct(stat.S_IMODE(p.stat().st_mode))
            for p in files
            if stat.S_IMODE(p.stat().st_mode) & 0o077
        }
        assert loose == {}
        assert stat.S_IMODE((home / "spool").stat().st_mode) == 0o700
    finally:
        os.umask(old)


def test_scan_reads_no_further_than_the_published_mark(sqlite_url):
    """Issue 12: ingest reads what the writer published, not the segment's pre-allocated size."""
    with workbench.open(sqlite_url, ingest="off") as wb:
        client = wb.wrap(FakeOpenAI().client())
        client.chat.completions.create(model="m", messages=MESSAGES)
        (live,) = list_segments(wb.spool_dir)
        scan = scan_segment(live, DATA_START, live=True)
        assert len(scan.records) == 1 and scan.end < 4096 < live.stat().st_size
