"""Issue 13 item 1: a stream's trace status is how its iteration ended, with the SDK's default HTTP client.

The default client closes the response *before* a failed read's error reaches the app, so a wrapper
that trusts ``close()`` records a dropped connection as ok; these tests fail on such a wrapper.
"""

from __future__ import annotations

import gc

import pytest

import workbench

from .openai_fakes import chat_sse
from .wrap_support import Endpoint, all_traces, stored

MESSAGES = [{"role": "user", "content": "Capital of France?"}]


@pytest.fixture
def wb(sqlite_url: str):
    handle = workbench.open(sqlite_url, background_ingest=False)
    yield handle
    handle.close()


def test_stream_read_to_the_end_is_ok(wb):
    server = Endpoint(chat_sse(["Par", "is"]))
    client = wb.wrap(server.client())
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Paris"
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert (trace.status, trace.output_text, trace.stream) == ("ok", "Paris", True)


def test_connection_dropped_mid_stream_is_an_error_with_the_partial_output(wb):
    server = Endpoint()
    parts = ["Par", "is", " the", " capital"]
    server.push(server.broken_stream(parts), server.broken_stream(parts))
    with pytest.raises(Exception) as plain_error:  # what the SDK raises (APIConnectionError from openai 1.9x on)
        list(server.client().chat.completions.create(model="m", messages=MESSAGES, stream=True))
    client = wb.wrap(server.client())
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    seen = []
    with pytest.raises(type(plain_error.value)):
        for chunk in stream:
            seen.append(chunk)
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert trace.status == "error" and trace.error_type == type(plain_error.value).__name__
    assert len(seen) == 2 and trace.output_text == "Par"  # the role chunk and the first word arrived
    assert trace.ttft_ms is not None


async def test_async_connection_dropped_mid_stream_is_an_error(wb):
    server = Endpoint()
    server.push(*(server.broken_stream(["Par", "is", " the"], is_async=True) for _ in range(2)))
    with pytest.raises(Exception) as plain_error:
        async for _ in await server.async_client().chat.completions.create(model="m", messages=MESSAGES, stream=True):
            pass
    expected = type(plain_error.value)
    client = wb.wrap(server.async_client())
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(expected):
        async for _ in stream:
            pass
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert (trace.status, trace.error_type) == ("error", expected.__name__)


def test_malformed_chunk_is_an_error(wb):
    good = chat_sse(["Par"])
    body = good[: good.index(b"\n\n") + 2] + b"data: {this is not json\n\n"
    server = Endpoint(body)
    client = wb.wrap(server.client())
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(ValueError):  # json.JSONDecodeError, as the SDK raises it
        list(stream)
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert (trace.status, trace.error_type) == ("error", "JSONDecodeError")


def test_stream_abandoned_after_one_chunk_is_cancelled(wb):
    server = Endpoint(chat_sse(["a", "b", "c", "d"]))
    client = wb.wrap(server.client())
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert trace.status == "cancelled" and trace.error_type is None


def test_stream_dropped_without_close_is_cancelled(wb):
    server = Endpoint(chat_sse(["a", "b", "c"]), chat_sse(["x"]))
    client = wb.wrap(server.client())
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True, workbench={"session_id": "s1"})
    next(iter(stream))
    unread = client.chat.completions.create(model="m", messages=MESSAGES, stream=True, workbench={"session_id": "s2"})
    del stream, unread
    gc.collect()
    wb.flush()
    assert sorted((t.session_id, t.status) for t in all_traces(wb)) == [("s1", "cancelled"), ("s2", "cancelled")]


async def test_async_stream_closed_early_is_cancelled(wb):
    server = Endpoint(chat_sse(["a", "b", "c"]))
    client = wb.wrap(server.async_client())
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.close()
    wb.flush()
    assert stored(wb, workbench.trace_id(stream)).status == "cancelled"


def test_stream_cut_short_without_an_error_is_an_incomplete_error(wb):
    """A body that just stops (connection closed by a proxy, HTTP/1.0-style) ends as cleanly for the SDK as
    a finished one; only the missing final event tells. The app sees no error; the trace says partial."""
    body = chat_sse(["Par", "is", " the", " capital"])
    server = Endpoint(body[: body.index(b"\n\n", body.index(b"\n\n") + 2) + 2])
    client = wb.wrap(server.client())
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert len(list(stream)) == 2
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert (trace.status, trace.error_type, trace.output_text) == ("error", "IncompleteStream", "Par")


def _cyclic_garbage(make_call) -> int:  # noqa: ANN001
    """Objects one call leaves for the cyclic GC (reachable only through reference cycles)."""
    make_call()  # warm: first-use caches are not garbage
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        make_call()
        gc.collect()
        return len(gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


@pytest.mark.parametrize("is_async", [False, True])
def test_a_finished_stream_leaves_no_more_for_the_cyclic_gc_than_the_plain_client(wb, is_async):
    """httpx keeps a response in a cycle with its stream, so whatever the wrapper hangs on the response waits
    for the cyclic GC: more collections, and longer ones, in the app. A finished call takes its tee back."""
    import asyncio

    server = Endpoint()
    server.replies.extend([chat_sse(["Par", "is"])] * 4)
    plain = server.async_client() if is_async else server.client()
    wrapped = wb.wrap(server.async_client() if is_async else server.client())

    def call(client):  # noqa: ANN001, ANN202
        if not is_async:
            return lambda: list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))

        async def consume() -> None:
            async for _chunk in await client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
                pass

        return lambda: asyncio.run(consume())

    plain_garbage = _cyclic_garbage(call(plain))
    wrapped_garbage = _cyclic_garbage(call(wrapped))
    assert wrapped_garbage <= plain_garbage + 2, (plain_garbage, wrapped_garbage)  # + the response's __dict__
    wb.flush()
    assert len(all_traces(wb)) == 2 and all(t.status == "ok" for t in all_traces(wb))
