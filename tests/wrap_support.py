"""A scriptable OpenAI endpoint behind the SDK's *default* HTTP client (httpx or httpx2, whichever the
installed openai uses), plus SSE bodies the SDK's stream helpers accept. For tests/test_wrap_*.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai

from .openai_fakes import chat_body, chat_sse, responses_body

__all__ = ["Endpoint", "all_traces", "helpers", "http_module", "needs_responses", "responses_helper_sse", "stored"]


def http_module() -> Any:
    """The HTTP library behind ``openai.DefaultHttpxClient`` (httpx2 from openai 3.x on, httpx before)."""
    import httpx

    if not issubclass(openai.DefaultHttpxClient, httpx.Client):
        import httpx2

        return httpx2
    return httpx


Reply = Callable[[Any], Any] | dict[str, Any] | bytes | tuple[int, dict[str, Any]]


class Endpoint:
    """Replies in order (then a default chat completion); keeps every request it saw."""

    def __init__(self, *replies: Reply) -> None:
        self.http = http_module()
        self.replies: list[Reply] = list(replies)
        self.requests: list[Any] = []

    def push(self, *replies: Reply) -> Endpoint:
        self.replies.extend(replies)
        return self

    def _reply(self, request: Any) -> Any:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else chat_body()
        if callable(reply):
            return reply(request)
        if isinstance(reply, bytes):
            return self.http.Response(200, content=reply, headers={"content-type": "text/event-stream"})
        if isinstance(reply, tuple):
            return self.http.Response(reply[0], json=reply[1])
        return self.http.Response(200, json=reply)

    def client(self, **kwargs: Any) -> openai.OpenAI:
        transport = self.http.MockTransport(self._reply)
        return openai.OpenAI(
            api_key="sk-test",
            base_url="http://fake.local/v1",
            max_retries=kwargs.pop("max_retries", 0),
            http_client=openai.DefaultHttpxClient(transport=transport),
            **kwargs,
        )

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        async def reply(request: Any) -> Any:
            return self._reply(request)

        transport = self.http.MockTransport(reply)
        return openai.AsyncOpenAI(
            api_key="sk-test",
            base_url="http://fake.local/v1",
            max_retries=kwargs.pop("max_retries", 0),
            http_client=openai.DefaultAsyncHttpxClient(transport=transport),
            **kwargs,
        )

    # -- failure modes -------------------------------------------------------------------------------
    def broken_stream(self, parts: list[str], *, is_async: bool = False) -> Callable[[Any], Any]:
        """An SSE reply whose connection drops after the first events (a read error mid-body)."""
        body = chat_sse(parts)
        cut = body.index(b"\n\n", body.index(b"\n\n") + 2) + 2  # two whole events, then the drop
        http = self.http

        def respond(request: Any) -> Any:
            if is_async:

                async def agen() -> Any:
                    yield body[:cut]
                    raise http.ReadError("connection reset by peer")

                content: Any = agen()
            else:

                def gen() -> Any:
                    yield body[:cut]
                    raise http.ReadError("connection reset by peer")

                content = gen()
            return http.Response(200, content=content, headers={"content-type": "text/event-stream"})

        return respond


def helpers(client: Any) -> Any:
    """Where ``parse``/``stream`` live: ``chat.completions`` (openai >= 1.9x), ``beta.chat.completions`` before."""
    completions = client.chat.completions
    return completions if hasattr(completions, "parse") else client.beta.chat.completions


def needs_responses(client: Any) -> None:
    import pytest

    if not hasattr(client, "responses"):
        pytest.skip(f"openai {openai.__version__} has no Responses API")


def responses_helper_sse(parts: list[str], *, rid: str = "resp_s1") -> bytes:
    """A Responses API stream with the item/part events the SDK's ``responses.stream()`` helper needs."""
    final = responses_body("".join(parts), rid=rid)
    created = {**final, "status": "in_progress", "output": [], "usage": None}
    item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": created},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {
            "type": "response.content_part.added",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "part": part,
        },
    ]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": p,
            "logprobs": [],
        }
        for p in parts
    ]
    events.append({"type": "response.completed", "response": final})
    for i, event in enumerate(events):
        event["sequence_number"] = i
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def stored(wb: Any, ref: str) -> Any:
    """The stored trace for a trace id or provider response id (after ``wb.flush()``)."""
    from workbench.store import traces as trace_rows

    with wb.store.read() as conn:
        return trace_rows.get_trace(conn, ref)


def all_traces(wb: Any) -> list[Any]:
    from workbench.store import traces as trace_rows

    with wb.store.read() as conn:
        return list(trace_rows.list_traces(conn, limit=1000))
