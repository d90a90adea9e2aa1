"""Explicit feedback API and CLI: append-only, idempotent, validated, on both stores."""

from __future__ import annotations

import json

import pytest

import workbench
from workbench.errors import NotFoundError, ValidationError
from workbench.store import feedback as feedback_rows

from .conftest import run_cli
from .openai_fakes import FakeOpenAI, chat_body


@pytest.fixture
def wb_and_trace(store_url):
    wb = workbench.open(store_url, background_ingest=False)
    client = wb.wrap(FakeOpenAI().client())
    resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    wb.flush()
    yield wb, workbench.trace_id(resp)
    wb.close()


def test_votes_are_append_only_and_views_use_latest(wb_and_trace):
    wb, tid = wb_and_trace
    wb.feedback.thumbs(tid, up=True, user_id="u1")
    wb.feedback.thumbs("chatcmpl-1", up=False, user_id="u1")  # by provider response id; u1 changed their mind
    wb.feedback.thumbs(tid, up=True, user_id="u2")
    with wb.store.read() as conn:
        every = feedback_rows.list_feedback(conn, trace_ids=[tid], signal="thumbs")
        latest = feedback_rows.list_feedback(conn, trace_ids=[tid], signal="thumbs", latest_per_user=True)
    assert [f.value for f in every] == [1.0, 0.0, 1.0]
    assert sorted((f.user_id, f.value) for f in latest) == [("u1", 0.0), ("u2", 1.0)]


def test_rating_correction_comment_and_idempotency(wb_and_trace):
    wb, tid = wb_and_trace
    first = wb.feedback.rating(tid, 2, scale=(1, 5), idempotency_key="k-1", metadata={"app": "web"})
    again = wb.feedback.rating(tid, 2, scale=(1, 5), idempotency_key="k-1")
    assert again.id == first.id and first.metadata == {"app": "web", "scale": [1.0, 5.0]}
    wb.feedback.correction(tid, "Paris.", user_id="u3")
    wb.feedback.comment(tid, "too long")
    with wb.store.read() as conn:
        rows = feedback_rows.list_feedback(conn, trace_ids=[tid])
    assert [r.signal for r in rows] == ["rating", "correction", "comment"]
    assert rows[1].text == "Paris." and rows[1].source == "user:u3" and rows[1].kind == "explicit"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda fb, t: fb.rating(t, 7, scale=(1, 5)), "field 'value' is 7, outside the rating scale 1..5"),
        (lambda fb, t: fb.rating(t, "4"), "field 'value' must be a number"),
        (lambda fb, t: fb.rating(t, 3, scale=(5, 1)), "field 'scale'"),
        (lambda fb, t: fb.correction(t, "   "), "field 'text' must be non-empty"),
        (lambda fb, t: fb.thumbs(t, up="yes"), "field 'up'"),
    ],
)
def test_validation_errors_name_the_field(wb_and_trace, call, message):
    wb, tid = wb_and_trace
    with pytest.raises(ValidationError, match=message.replace(".", r"\.")):
        call(wb.feedback, tid)


def test_feedback_right_after_the_call_finds_the_spooled_trace(store_url):
    """The README's flow: thumbs on a response before any ingest has run (no background thread here)."""
    wb = workbench.open(store_url, background_ingest=False)
    try:
        client = wb.wrap(FakeOpenAI().push(chat_body(rid="chatcmpl-fresh")).client())
        resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        vote = wb.feedback.thumbs(workbench.trace_id(resp), up=False, user_id="u1")
        rating = wb.feedback.rating(resp.id, 2, user_id="u1")
        assert vote.trace_id == rating.trace_id == workbench.trace_id(resp)
        with pytest.raises(NotFoundError, match="chatcmpl-never"):
            wb.feedback.comment("chatcmpl-never", "still unknown after catching up")
    finally:
        wb.close()


def test_cli_feedback_on_a_trace_still_in_the_spool(tmp_path):
    """`workbench feedback add` in another process, while the app's capture has not been ingested yet."""
    url = f"sqlite:///{tmp_path / '.workbench' / 'workbench.db'}"
    wb = workbench.open(url, background_ingest=False)
    try:
        client = wb.wrap(FakeOpenAI().client())
        resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        tid = workbench.trace_id(resp)
        result = run_cli("--store", url, "feedback", "add", tid, "--thumbs", "down", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        missing = run_cli("--store", url, "feedback", "add", "nope-1", "--thumbs", "up", cwd=tmp_path)
        assert missing.returncode == 4 and "nope-1" in missing.stderr
        with wb.store.read() as conn:
            (row,) = feedback_rows.list_feedback(conn, trace_ids=[tid], signal="thumbs")
        assert row.value == 0.0
    finally:
        wb.close()


def test_unknown_ref(wb_and_trace):
    wb, _ = wb_and_trace
    with pytest.raises(NotFoundError, match="no-such"):
        wb.feedback.thumbs("no-such", up=False)


def test_cli_add_and_import_keep_good_rows(tmp_path):
    with workbench.open(background_ingest=False) as wb:
        client = wb.wrap(FakeOpenAI().client())
        tid = workbench.trace_id(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]))
        wb.flush()
    added = run_cli("feedback", "add", tid, "--thumbs", "down", "--user", "u1", "--json", cwd=tmp_path)
    assert added.returncode == 0, added.stderr and json.loads(added.stdout)["value"] == 0.0
    both = run_cli("feedback", "add", tid, "--thumbs", "up", "--rating", "3", cwd=tmp_path)
    assert both.returncode == 2 and "exactly one of" in both.stderr
    rows = [
        {"trace_id": tid, "thumbs": "up", "user_id": "u2"},
        "not json",
        {"trace_id": tid, "rating": 9},
        {"trace_id": "missing", "thumbs": "down"},
        {"trace_id": tid, "correction": "Better answer", "idempotency_key": "c1"},
        {"trace_id": tid, "correction": "Better answer", "idempotency_key": "c1"},
    ]
    path = tmp_path / "votes.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    result = run_cli("feedback", "import", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 2  # bad input; the good rows are kept
    report = json.loads(result.stdout)
    assert report["imported"] == 3
    assert [e["line"] for e in report["errors"]] == [2, 3, 4]
    assert "outside the rating scale" in report["errors"][1]["error"] and "missing" in report["errors"][2]["error"]
    listed = json.loads(run_cli("feedback", "list", "--trace", tid, "--json", cwd=tmp_path).stdout)
    assert [r["signal"] for r in listed] == ["thumbs", "thumbs", "correction"]  # the repeated key stored once
