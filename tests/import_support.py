"""Calls made through the real wrapper (wb.wrap on httpx.MockTransport, with a fake clock) for the import
round-trip test and bench/import_throughput.py: sessions that give the miner something to find
(regenerations, pushback, thanks), streams, the Responses API, tool calls, errors and prompt versions."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from .openai_fakes import FakeOpenAI, chat_body, chat_sse, responses_body

__all__ = ["Clock", "record_sessions", "trace_columns"]

QUESTIONS = [
    "What is the capital of Australia?",
    "How do I rename a git branch?",
    "Why is the sky blue?",
    "How many legs does a spider have?",
    "What is the boiling point of water at sea level?",
]


class Clock:
    """Epoch seconds that advance by ``step`` on every read (the wrapper reads it once per call)."""

    def __init__(self, start: float, step: float = 7.0) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def record_sessions(wb: Any, fake: FakeOpenAI, calls: int, *, prompts: list[Any] | None = None) -> int:
    """Make ``calls`` wrapped calls in sessions of four turns; returns how many were made."""
    client = wb.wrap(fake.client())
    made = 0
    for number in itertools.count():
        if made >= calls:
            break
        question = QUESTIONS[number % len(QUESTIONS)]
        ctx: dict[str, Any] = {"session_id": f"s-{number}", "user_id": f"u-{number % 37}", "tags": ["imported"]}
        if prompts:
            prompt = prompts[number % len(prompts)]
            ctx.update(prompt=prompt, variables={"question": question}, variant="AB"[number % 2])
        history: list[dict[str, Any]] = [{"role": "user", "content": question}]
        kind = number % 6
        turns: list[tuple[Any, dict[str, Any]]] = []
        if kind == 0:  # regenerate, pushback, thanks
            fake.push(
                chat_body(f"Answer {number}.", rid=f"r{number}a"), chat_body(f"Again {number}.", rid=f"r{number}b")
            )
            turns += [("chat", {}), ("chat", {})]
            history2 = [
                *history,
                {"role": "assistant", "content": f"Again {number}."},
                {"role": "user", "content": "That's wrong, it isn't right at all."},
            ]
            fake.push(chat_body(f"Sorry, fixed {number}.", rid=f"r{number}c"))
            turns.append(("chat", {"messages": history2}))
        elif kind == 1:  # a stream, with usage
            fake.push(chat_sse(["Par", "is."], rid=f"r{number}s"))
            turns.append(("stream", {}))
        elif kind == 2:  # the Responses API
            fake.push(responses_body(f"Bonjour {number}.", rid=f"resp_{number}"))
            turns.append(("responses", {}))
        elif kind == 3:  # a tool call
            call = {"id": f"call_{number}", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
            fake.push(chat_body("", rid=f"r{number}t", tool_calls=[call]))
            turns.append(("chat", {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]}))
        elif kind == 4:  # a server error (recorded, then re-raised)
            fake.push(httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}}))
            turns.append(("error", {}))
        else:  # a plain answer and thanks
            fake.push(chat_body(f"Plain {number}.", rid=f"r{number}p"))
            turns.append(("chat", {"temperature": 0.3}))
            fake.push(chat_body("You're welcome!", rid=f"r{number}w"))
            turns.append(
                (
                    "chat",
                    {
                        "messages": [
                            *history,
                            {"role": "assistant", "content": f"Plain {number}."},
                            {"role": "user", "content": "thanks!"},
                        ]
                    },
                )
            )
        for what, extra in turns:
            if made >= calls:
                fake.replies.clear()
                break
            messages = extra.pop("messages", history)
            if what == "responses":
                client.responses.create(model="gpt-4.1", input=question, instructions="Be brief.", workbench=ctx)
            elif what == "stream":
                stream = client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    workbench=ctx,
                )
                for _ in stream:
                    pass
            elif what == "error":
                try:
                    client.chat.completions.create(model="gpt-4o-mini", messages=messages, workbench=ctx)
                except Exception:  # noqa: BLE001 - the SDK's own error, recorded by the wrapper
                    pass
            else:
                client.chat.completions.create(model="gpt-4o-mini", messages=messages, workbench=ctx, **extra)
            made += 1
    return made


def trace_columns(row: Any) -> dict[str, Any]:
    """A trace as a plain dict of every column (for field-by-field comparison)."""
    return row.model_dump() if hasattr(row, "model_dump") else dict(row)
