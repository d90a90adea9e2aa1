"""Replays demo traffic through a real wrapped OpenAI client whose transport answers from a script.

Two sources: the Open-Assistant trees shipped in ``workbench/data`` (real questions, real answers, real
+1/-1 reactions; lower-ranked sibling answers are replayed as regenerations), and hand-written support
sessions (``workbench/data/demo_sessions.jsonl``) that exercise every implicit-signal detector. A replay
clock spreads the traffic over the past week, as if it had been captured live.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import httpx
from openai import OpenAI

from ..models import Prompt
from ..workbench import Workbench

__all__ = ["DemoTraffic", "FakeProvider", "replay_oasst", "replay_simulated"]

MODELS = {"A": ("gpt-4o-mini-2024-07-18", "fp_2f6a1c"), "B": ("gpt-4o-mini-2024-07-18", "fp_9d3e77")}


class FakeProvider:
    """An OpenAI-compatible transport that answers with whatever the replay queued next."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str | None, str]] = deque()
        self.calls = 0

    def push(self, answer: str | None, variant: str) -> None:
        self.queue.append((answer, variant))

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        answer, variant = self.queue.popleft()
        if answer is None:
            return httpx.Response(429, json={"error": {"message": "Rate limit reached (demo)", "type": "requests"}})
        model, fingerprint = MODELS[variant]
        return httpx.Response(
            200,
            json={
                "id": f"chatcmpl-demo{self.calls:06d}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": model,
                "system_fingerprint": fingerprint,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": 40 + len(answer) // 20,
                    "completion_tokens": max(1, len(answer) // 4),
                    "total_tokens": 40 + len(answer) // 20 + max(1, len(answer) // 4),
                },
            },
        )

    def client(self) -> OpenAI:
        return OpenAI(
            api_key="sk-demo",
            base_url="https://api.openai.example/v1",
            max_retries=0,
            http_client=httpx.Client(transport=httpx.MockTransport(self.handler)),
        )


class ReplayClock:
    """The wrapper's clock during a replay: set to each recorded time before the call."""

    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> float:
        return self.at


@dataclass
class DemoTraffic:
    traces: int = 0
    sessions: int = 0
    errors: int = 0
    votes: list[tuple[str, bool, str]] = field(default_factory=list)  # (trace id, up, voter)
    regenerations: int = 0
    better_answers: dict[str, str] = field(default_factory=dict)  # regenerated trace id -> the better answer


def _call(
    wb_client: Any,
    provider: FakeProvider,
    clock: ReplayClock,
    when: datetime,
    messages: list[dict[str, Any]],
    answer: str | None,
    *,
    variant: str,
    prompt: Prompt,
    ctx: dict[str, Any],
) -> str | None:
    provider.push(answer, variant)
    clock.at = when.timestamp()
    try:
        resp = wb_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            temperature=0.7,
            workbench={"prompt": prompt, "variant": variant, **ctx},
        )
    except Exception:  # noqa: BLE001 - scripted 429s: the wrapper recorded them
        return None
    from ..capture.wrap import trace_id

    return trace_id(resp)


def _trees() -> Iterator[dict[str, Any]]:
    text = resources.files("workbench").joinpath("data/oasst_en_100_trees.jsonl").read_text("utf-8")
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def _ranked(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assistants = [r for r in replies if r.get("role") == "assistant"]
    return sorted(assistants, key=lambda r: (r.get("rank") is None, r.get("rank") or 0))


def replay_oasst(
    wb: Workbench,
    provider: FakeProvider,
    clock: ReplayClock,
    prompts: dict[str, Prompt],
    *,
    start: datetime,
    span: timedelta,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoTraffic:
    """Each tree becomes a session following the best-ranked answers; the next-ranked sibling is a
    regeneration of the same request. Every +1/-1 reaction becomes a thumbs vote by its own voter."""
    client = wb.wrap(provider.client())
    out = DemoTraffic()
    trees = list(_trees())[:limit]
    for index, tree in enumerate(trees):
        variant = "A" if index % 2 == 0 else "B"
        prompt = prompts[variant]
        session = f"oasst-{tree['message_tree_id'][:8]}"
        ctx = {"session_id": session, "user_id": f"user-{tree['message_tree_id'][9:13]}"}
        when = start + span * (index / max(1, len(trees)))
        history: list[dict[str, Any]] = [{"role": "system", "content": prompt.template}]
        node: dict[str, Any] | None = tree["prompt"]
        out.sessions += 1
        while node is not None:
            history.append({"role": "user", "content": node["text"]})
            replies = _ranked(node.get("replies") or [])
            if not replies:
                break
            best = replies[0]
            # A lower-ranked answer first, then the best-ranked one as its regeneration: what a user who
            # regenerated a weak answer saw. The pair feeds preference data (chosen = the regeneration).
            order = [*replies[1:2], best]
            first_tid: str | None = None
            for answer in order:
                regenerate = answer is best and len(order) > 1
                when += timedelta(seconds=25 if regenerate else 75)
                tid = _call(
                    client,
                    provider,
                    clock,
                    when,
                    list(history),
                    answer["text"],
                    variant=variant,
                    prompt=prompt,
                    ctx={**ctx, "metadata": {"regenerate": True}} if regenerate else ctx,
                )
                out.traces += 1
                out.regenerations += regenerate
                if regenerate and first_tid:
                    out.better_answers[first_tid] = answer["text"]
                first_tid = first_tid or tid
                emojis = answer.get("emojis") or {}
                if tid:
                    out.votes += [(tid, True, f"voter-{n}") for n in range(int(emojis.get("+1", 0)))]
                    out.votes += [(tid, False, f"critic-{n}") for n in range(int(emojis.get("-1", 0)))]
            history.append({"role": "assistant", "content": best["text"]})
            follow = [r for r in best.get("replies") or [] if r.get("role") == "prompter"]
            node = follow[0] if follow else None
        if progress is not None:
            progress(1)
    return out


def replay_simulated(
    wb: Workbench,
    provider: FakeProvider,
    clock: ReplayClock,
    prompts: dict[str, Prompt],
    *,
    end: datetime,
    sessions: int = 150,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> DemoTraffic:
    """Hand-written support sessions (``data/demo_sessions.jsonl``: re-asks, regenerations, pushback, a
    correction, thanks, a failed answer the user walked away from, and look-alikes that are none of
    these), cycled up to ``sessions`` with fresh ids and shifted so the last call happened at ``end``
    (the demo passes "now": nothing is captured in the future, so a `workbench mine` right after the
    demo has nothing left to find). ``seed`` picks where the cycle starts. Each request is built by
    ``feedback.signals.dataset.calls``, the same code the quality bench replays with."""
    from ..feedback.signals.dataset import calls

    client = wb.wrap(provider.client())
    out = DemoTraffic()
    text = resources.files("workbench").joinpath("data/demo_sessions.jsonl").read_text("utf-8")
    bank = [json.loads(line) for line in text.splitlines() if line.strip()]
    chosen = [bank[(seed + i) % len(bank)] for i in range(sessions)]
    spacing = timedelta(minutes=50)
    variants = ["B" if index % 3 else "A" for index in range(len(chosen))]
    planned = [
        list(calls(session, system=prompts[variant].template))
        for session, variant in zip(chosen, variants, strict=True)
    ]
    # The latest call of all (a long session started earlier can end after the last one) lands on `end`.
    last = max(
        (
            spacing * index + timedelta(seconds=max((c.t for c in plan), default=0.0))
            for index, plan in enumerate(planned)
        ),
        default=timedelta(0),
    )
    start = end - last
    for index, (session, variant, plan) in enumerate(zip(chosen, variants, planned, strict=True)):
        began = start + spacing * index
        ctx: dict[str, Any] = {
            "session_id": f"{session['session_id']}-{index:04d}",
            "user_id": f"{session['user_id']}-{index % 37}",
        }
        out.sessions += 1
        for call in plan:
            tid = _call(
                client,
                provider,
                clock,
                began + timedelta(seconds=call.t),
                call.messages,
                call.answer,
                variant=variant,
                prompt=prompts[variant],
                ctx=ctx,
            )
            out.traces += 1
            out.errors += tid is None
        if progress is not None:
            progress(1)
    return out
