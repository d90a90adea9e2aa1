"""A scriptable OpenAI-compatible server at the httpx transport level (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from openai import AsyncOpenAI, OpenAI

__all__ = ["FakeOpenAI", "chat_body", "chat_sse", "responses_body", "responses_sse"]


def chat_body(
    content: str = "Paris is the capital of France.",
    *,
    rid: str = "chatcmpl-1",
    model: str = "gpt-4o-mini-2024-07-18",
    fingerprint: str = "fp_abc",
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    return {
        "id": rid,
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
    }


def chat_sse(
    parts: list[str],
    *,
    rid: str = "chatcmpl-s1",
    model: str = "gpt-4o-mini-2024-07-18",
    usage: bool = True,
    tool_call: dict[str, str] | None = None,
) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "system_fingerprint": "fp_stream",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": part}) for part in parts]
    if tool_call:
        args = tool_call["arguments"]
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": tool_call["name"], "arguments": args[:5]},
                        }
                    ]
                }
            )
        )
        events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[5:]}}]}))
    events.append(chunk({}, "stop"))
    if usage:
        events.append(
            {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": model,
                "choices": [],
                "usage": {"prompt_tokens": 5, "completion_tokens": len(parts), "total_tokens": 5 + len(parts)},
            }
        )
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return body + b"data: [DONE]\n\n"


def responses_body(
    text: str = "Bonjour.",
    *,
    rid: str = "resp_1",
    model: str = "gpt-4.1-2025-04-14",
    function_call: dict[str, str] | None = None,
) -> dict[str, Any]:
    output: list[dict[str, Any]] = [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    ]
    if function_call:
        output.append(
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_9",
                "status": "completed",
                "name": function_call["name"],
                "arguments": function_call["arguments"],
            }
        )
    return {
        "id": rid,
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 9,
            "output_tokens": 3,
            "total_tokens": 12,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


def responses_sse(parts: list[str], *, rid: str = "resp_s1") -> bytes:
    final = responses_body("".join(parts), rid=rid)
    created = {**final, "status": "in_progress", "output": [], "usage": None}
    events = [{"type": "response.created", "sequence_number": 0, "response": created}]
    events += [
        {
            "type": "response.output_text.delta",
            "sequence_number": i + 1,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": p,
            "logprobs": [],
        }
        for i, p in enumerate(parts)
    ]
    events.append({"type": "response.completed", "sequence_number": len(parts) + 1, "response": final})
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


Handler = Callable[[httpx.Request], httpx.Response]


class FakeOpenAI:
    """Queue of scripted replies; records the requests it saw."""

    def __init__(self) -> None:
        self.replies: list[Handler | httpx.Response | dict[str, Any] | bytes] = []
        self.default: dict[str, Any] = chat_body()
        self.requests: list[httpx.Request] = []

    def push(self, *replies: Handler | httpx.Response | dict[str, Any] | bytes) -> FakeOpenAI:
        self.replies.extend(replies)
        return self

    def _reply(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else self.default
        if callable(reply):
            return reply(request)
        if isinstance(reply, httpx.Response):
            return reply
        if isinstance(reply, bytes):
            return httpx.Response(200, content=reply, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=reply)

    def handler(self, request: httpx.Request) -> httpx.Response:
        return self._reply(request)

    async def ahandler(self, request: httpx.Request) -> httpx.Response:
        return self._reply(request)

    def client(self, **kwargs: Any) -> OpenAI:
        return OpenAI(
            api_key="sk-test",
            base_url="http://fake.local/v1",
            max_retries=kwargs.pop("max_retries", 0),
            http_client=httpx.Client(transport=httpx.MockTransport(self.handler)),
            **kwargs,
        )

    def async_client(self, **kwargs: Any) -> AsyncOpenAI:
        return AsyncOpenAI(
            api_key="sk-test",
            base_url="http://fake.local/v1",
            max_retries=kwargs.pop("max_retries", 0),
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(self.ahandler)),
            **kwargs,
        )
