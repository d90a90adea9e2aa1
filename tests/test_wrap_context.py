"""Issue 13 item 4 (redact= reaches workbench variables and metadata) and issue 16 item 12 (workbench=
values are checked at the call, before anything is sent, never accepted and then lost at ingest)."""

from __future__ import annotations

import re

import pytest

import workbench
from workbench.capture.context import MAX_TEXT
from workbench.errors import InvalidContextError

from .openai_fakes import chat_body, chat_sse
from .wrap_support import Endpoint, all_traces, helpers, stored

MESSAGES = [{"role": "user", "content": "My email is ann@example.com, where is my order?"}]
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def _mask(data):
    if isinstance(data, str):
        return EMAIL.sub("<email>", data)
    if isinstance(data, dict):
        return {k: _mask(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask(v) for v in data]
    return data


@pytest.fixture
def wb(sqlite_url: str):
    handle = workbench.open(sqlite_url, background_ingest=False, redact=_mask)
    yield handle
    handle.close()


@pytest.fixture
def plain_wb(sqlite_url: str):
    """A store without a redact hook, for the tests of how context reaches a call."""
    handle = workbench.open(sqlite_url, background_ingest=False)
    yield handle
    handle.close()


def test_redact_applies_to_variables_and_metadata(wb):
    client = wb.wrap(Endpoint().client())
    variables = {"question": "My email is ann@example.com, where is my order?"}
    metadata = {"reply_to": "ann@example.com", "nested": {"cc": ["bob@example.org"]}}
    resp = client.chat.completions.create(
        model="m", messages=MESSAGES, workbench={"variables": variables, "metadata": metadata, "session_id": "s"}
    )
    wb.flush()
    trace = stored(wb, workbench.trace_id(resp))
    assert trace.input[0]["content"] == "My email is <email>, where is my order?"
    assert trace.variables == {"question": "My email is <email>, where is my order?"}
    assert trace.metadata == {"reply_to": "<email>", "nested": {"cc": ["<email>"]}}
    assert variables["question"].startswith("My email is ann@")  # the app's own dicts are untouched


def test_a_failing_redact_hook_records_nothing_unredacted(sqlite_url, caplog):
    def broken(data):
        raise RuntimeError("hook bug")

    wb = workbench.open(sqlite_url, background_ingest=False, redact=broken)
    try:
        client = wb.wrap(Endpoint().client())
        resp = client.chat.completions.create(model="m", messages=MESSAGES, workbench={"variables": {"q": "x"}})
        assert resp.choices[0].message.content  # the app is served
        assert workbench.trace_id(resp) is None and wb.dropped == 1  # no id handed out for a trace not kept
        wb.flush()
        assert all_traces(wb) == []
    finally:
        wb.close()


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"metadata": {1: "x"}}, "metadata"),
        ({"variables": {"when": object()}}, "variables"),
        ({"variables": {"big": 2**70}}, "variables"),
        ({"metadata": ["not", "a", "dict"]}, "metadata"),
        ({"parent_id": "01parent"}, "parent_id"),
        ({"session_id": "s" * (MAX_TEXT + 1)}, "session_id"),
        ({"user_id": "u\x00"}, "user_id"),
        ({"variant": 3}, "variant"),
        ({"tags": ["ok", 3]}, "tags"),
        ({"sesion_id": "typo"}, "sesion_id"),
        ({2: "x"}, "2"),
    ],
)
def test_bad_context_values_raise_before_the_request_is_sent(sqlite_url, context, message):
    wb = workbench.open(sqlite_url, background_ingest=False)
    try:
        server = Endpoint()
        client = wb.wrap(server.client())
        with pytest.raises(InvalidContextError, match=message):
            client.chat.completions.create(model="m", messages=MESSAGES, workbench=context)
        with pytest.raises(InvalidContextError):
            helpers(client).stream(model="m", messages=MESSAGES, workbench=context)
        assert server.requests == []
        wb.flush()
        assert all_traces(wb) == [] and wb.dropped == 0
    finally:
        wb.close()


def test_every_accepted_context_is_stored(sqlite_url):
    wb = workbench.open(sqlite_url, background_ingest=False)
    try:
        client = wb.wrap(Endpoint().client())
        first = client.chat.completions.create(model="m", messages=MESSAGES)
        context = {
            "parent_id": workbench.trace_id(first),
            "session_id": "s" * MAX_TEXT,
            "user_id": "ü" * MAX_TEXT,
            "tags": ("a", "b"),
            "metadata": {"n": 2**62, "when": "2026-12-04"},
            "variables": {},
        }
        second = client.chat.completions.create(model="m", messages=MESSAGES, workbench=context)
        wb.flush()
        trace = stored(wb, workbench.trace_id(second))
        assert trace.parent_id == workbench.trace_id(first) and trace.tags == ["a", "b"]
        assert trace.metadata == {"n": 2**62, "when": "2026-12-04"} and len(trace.session_id) == MAX_TEXT
    finally:
        wb.close()


def test_max_text_is_the_width_of_the_trace_columns():
    from workbench.store.schema import traces

    for name in ("session_id", "user_id", "variant"):
        assert traces.c[name].type.length == MAX_TEXT
    assert traces.c["parent_id"].type.length in (None, 26)


def test_context_block_is_the_typed_way_to_tag_calls(sqlite_url):
    wb = workbench.open(sqlite_url, background_ingest=False)
    try:
        client = wb.wrap(Endpoint(chat_body(), chat_body(), chat_sse(["ok"])).client())
        prompt = wb.prompts.register("support", "Answer: {q}")
        with workbench.context(prompt=prompt, session_id="s-1", variables={"q": "where?"}):
            inside = client.chat.completions.create(model="m", messages=MESSAGES)
            with workbench.context(user_id="u-1"):
                nested = client.chat.completions.create(model="m", messages=MESSAGES, workbench={"variant": "B"})
            with helpers(client).stream(model="m", messages=MESSAGES) as stream:
                stream.get_final_completion()
        outside = client.chat.completions.create(model="m", messages=MESSAGES)
        wb.flush()
        first, second, third, last = (stored(wb, workbench.trace_id(r)) for r in (inside, nested, stream, outside))
        assert (first.session_id, first.prompt_name, first.variables) == ("s-1", "support", {"q": "where?"})
        assert (second.session_id, second.user_id, second.variant) == ("s-1", "u-1", "B")
        assert third.session_id == "s-1" and third.stream
        assert (last.session_id, last.prompt_name) == (None, None)
    finally:
        wb.close()


async def test_context_block_reaches_async_calls_and_tasks(plain_wb):
    import asyncio

    client = plain_wb.wrap(Endpoint().async_client())
    with workbench.context(session_id="s-async"):
        task = asyncio.create_task(client.chat.completions.create(model="m", messages=MESSAGES))
    resp = await task
    plain_wb.flush()
    assert stored(plain_wb, workbench.trace_id(resp)).session_id == "s-async"


def test_context_block_checks_its_values_at_once():
    with pytest.raises(InvalidContextError, match="parent_id"), workbench.context(parent_id="short"):
        pass


def test_workbench_argument_belongs_to_its_own_call_only(plain_wb):
    """workbench= rides to post() with its own request: it must reach the request sent by that call (raw and
    streamed responses too, and over a context block's keys) and no call after it."""
    wb = plain_wb
    client = wb.wrap(Endpoint().client())
    tagged = client.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": "s-a"})
    untagged = client.chat.completions.create(model="m", messages=MESSAGES)
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=MESSAGES, workbench={"session_id": "s-raw"}
    )
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=MESSAGES, workbench={"session_id": "s-streamed"}
    ) as streamed:
        streamed.read()
    with workbench.context(session_id="s-block", user_id="u-block"):
        override = client.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": "s-call"})
    wb.flush()
    got = [stored(wb, workbench.trace_id(r)) for r in (tagged, untagged, raw, streamed, override)]
    assert [t.session_id for t in got] == ["s-a", None, "s-raw", "s-streamed", "s-call"]
    assert got[-1].user_id == "u-block"


async def test_concurrent_async_calls_keep_their_own_workbench_argument(plain_wb):
    import asyncio

    client = plain_wb.wrap(Endpoint().async_client())
    calls = [
        client.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": f"s-{i}"})
        for i in range(8)
    ]
    calls.append(client.chat.completions.create(model="m", messages=MESSAGES))
    responses = await asyncio.gather(*calls)
    plain_wb.flush()
    sessions = [stored(plain_wb, workbench.trace_id(r)).session_id for r in responses]
    assert sessions == [f"s-{i}" for i in range(8)] + [None]
