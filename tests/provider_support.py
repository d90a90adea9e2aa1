"""A scriptable Anthropic Messages endpoint behind the anthropic SDK's own HTTP client (httpx.MockTransport
of the httpx flavour the SDK uses), with bodies in the shapes of Anthropic's API reference.
For tests/test_providers_*.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic

__all__ = ["AnthropicEndpoint", "message_body", "message_sse", "tool_sse"]

MODEL = "claude-sonnet-4-5"
MODEL_VERSION = "claude-sonnet-4-5-20250929"  # what the response reports: the exact model version


def _http() -> Any:
    """The HTTP library behind ``anthropic.DefaultHttpxClient`` (httpx2 in anthropic 2.x, httpx before)."""
    import httpx

    if issubclass(anthropic.DefaultHttpxClient, httpx.Client):
        return httpx
    import httpx2

    return httpx2


def message_body(
    text: str | None = "Paris.",
    *,
    tool: dict[str, Any] | None = None,
    mid: str = "msg_01",
    stop_reason: str = "end_turn",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "text", "text": text})
    if tool is not None:
        content.append({"type": "tool_use", "id": "toolu_01", "name": tool["name"], "input": tool["input"]})
        stop_reason = "tool_use"
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": MODEL_VERSION,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 12, "output_tokens": 3},
    }


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def _start(mid: str, input_tokens: int) -> dict[str, Any]:
    message = {**message_body(None, mid=mid), "content": [], "stop_reason": None}
    message["usage"] = {"input_tokens": input_tokens, "output_tokens": 1}
    return {"type": "message_start", "message": message}


def message_sse(parts: list[str], *, mid: str = "msg_s1", end: bool = True) -> bytes:
    """A streamed text answer; ``end=False`` stops before message_delta/message_stop (a cut stream)."""
    events: list[dict[str, Any]] = [
        _start(mid, 12),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}} for p in parts]
    if end:
        events += [
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(parts)},
            },
            {"type": "message_stop"},
        ]
    return _sse(events)


def tool_sse(name: str, arguments: dict[str, Any], *, mid: str = "msg_t1") -> bytes:
    """A streamed tool call: a text block, then a tool_use block whose input arrives as JSON pieces."""
    raw = json.dumps(arguments)
    pieces = [raw[: len(raw) // 2], raw[len(raw) // 2 :]]
    events: list[dict[str, Any]] = [
        _start(mid, 40),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_s1", "name": name, "input": {}},
        },
    ]
    events += [
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": p}}
        for p in pieces
    ]
    events += [
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    return _sse(events)


Reply = Callable[[Any], Any] | dict[str, Any] | bytes | tuple[int, dict[str, Any]]


class AnthropicEndpoint:
    """Replies in order (then a default message); keeps every request it saw."""

    def __init__(self, *replies: Reply) -> None:
        self.http = _http()
        self.replies: list[Reply] = list(replies)
        self.requests: list[Any] = []

    def push(self, *replies: Reply) -> AnthropicEndpoint:
        self.replies.extend(replies)
        return self

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def _reply(self, request: Any) -> Any:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else message_body()
        if callable(reply):
            return reply(request)
        if isinstance(reply, bytes):
            return self.http.Response(200, content=reply, headers={"content-type": "text/event-stream"})
        if isinstance(reply, tuple):
            return self.http.Response(reply[0], json=reply[1])
        return self.http.Response(200, json=reply)

    def client(self, **kwargs: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key="sk-ant-test",
            base_url="http://anthropic.fake",
            max_retries=kwargs.pop("max_retries", 0),
            http_client=anthropic.DefaultHttpxClient(transport=self.http.MockTransport(self._reply)),
            **kwargs,
        )

    def async_client(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        async def reply(request: Any) -> Any:
            return self._reply(request)

        return anthropic.AsyncAnthropic(
            api_key="sk-ant-test",
            base_url="http://anthropic.fake",
            max_retries=kwargs.pop("max_retries", 0),
            http_client=anthropic.DefaultAsyncHttpxClient(transport=self.http.MockTransport(reply)),
            **kwargs,
        )
