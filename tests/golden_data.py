"""Golden items built from real Open-Assistant conversations (tests/data/oasst_golden_sample.jsonl).

The sample is 24 whole trees copied byte-for-byte from LAION-AI/Open-Assistant
(model/model_eval/manual/data/en_100_tree.jsonl, Apache-2.0, tests/data/licenses/). Every user
turn with at least two crowd-ranked assistant replies becomes one item: the conversation so far
is the input, the rank-0 reply the expected answer, the lowest-ranked reply the "original" answer
that drew complaints. That gives 35 items, 11 of them multi-turn, with real Unicode and lengths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "oasst_golden_sample.jsonl"
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def oasst_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], path: list[dict[str, Any]], tree_id: str) -> None:
        role = "user" if node["role"] == "prompter" else "assistant"
        path = [*path, {"role": role, "content": node["text"]}]
        replies = node.get("replies", [])
        ranked = sorted((r for r in replies if r.get("rank") is not None), key=lambda r: r["rank"])
        if role == "user" and len(ranked) >= 2:
            best, worst = ranked[0], ranked[-1]
            items.append(
                {
                    "input": [SYSTEM, *path],
                    "expected_output": best["text"],
                    "original_output": worst["text"],
                    "labels": ["oasst", f"depth-{len(path)}"],
                    "notes": None,
                    "provenance": {
                        "candidate_id": f"cand-{node['message_id']}",
                        "trace_ids": [worst["message_id"], best["message_id"]],
                        "feedback_ids": [f"fb-{worst['message_id']}"],
                        "prompt": "assistant@1",
                        "model": "oasst-crowd",
                        "rubric_ids": ["helpfulness"],
                    },
                }
            )
        for reply in replies:
            walk(reply, path, tree_id)

    for line in DATA.read_text(encoding="utf-8").splitlines():
        tree = json.loads(line)
        walk(tree["prompt"], [], tree["message_tree_id"])
    return items


def tool_item() -> dict[str, Any]:
    """A tool-using conversation: history with a tool call and result, answer that calls a tool."""
    return {
        "input": [
            {"role": "user", "content": "What's the weather in Paris and in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                },
            }
        ],
        "expected_output": None,
        "expected_tool_calls": [
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
        ],
        "original_output": "Paris is 18°C. I don't know about Oslo.",
        "provenance": {"candidate_id": "cand-tool", "trace_ids": ["trace-tool"], "feedback_ids": ["fb-tool"]},
    }
