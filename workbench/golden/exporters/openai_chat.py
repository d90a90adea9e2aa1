"""``openai-chat``: OpenAI chat fine-tuning JSONL, checked the way OpenAI's cookbook checks it.

Each line is ``{"messages": [...input..., {"role": "assistant", ...expected...}]}`` (plus
``"tools"`` when the item offered tools). Earlier assistant turns in the input get
``"weight": 0`` by default: they are what the model said in production, possibly the very
answers users complained about, and OpenAI trains on every assistant turn unless told not to.

Validation follows the cookbook's format checks (roles, non-empty content unless tool calls,
an assistant message, no unknown keys) plus tool-call shape; an invalid example is skipped with
its reason. Token counts use ``tiktoken`` when it is installed, otherwise an estimate of
~4 characters per token plus the cookbook's per-message overhead (3 per message, 1 per name,
3 to prime the reply), which is why over-limit examples get a *warning*, not a refusal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from workbench.golden.exporters.base import (
    ExportResult,
    ExportSource,
    SkippedItem,
    make_result,
    require_out,
    require_rows,
    write_jsonl,
)
from workbench.golden.items import GoldenItem, message_text

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "estimate_tokens",
    "export_openai_chat",
    "message_tokens",
    "sanitize_messages",
    "token_counter",
    "validate_chat_example",
]

ROLES = ("system", "user", "assistant", "tool")
MESSAGE_KEYS = {"role", "content", "name", "tool_calls", "tool_call_id", "function_call", "weight"}
DEFAULT_MAX_TOKENS = 65_536  # per-example context for gpt-4o / gpt-4.1 fine-tuning; 16_385 for gpt-3.5
MIN_EXAMPLES = 10  # OpenAI rejects fine-tuning files with fewer examples
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """About 4 characters per token (OpenAI's rule of thumb for English)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def token_counter() -> tuple[Callable[[str], int], str]:
    """``tiktoken`` (o200k_base) if installed and its encoding loads, else the estimate."""
    try:
        import tiktoken  # type: ignore[import-not-found]

        encoding = tiktoken.get_encoding("o200k_base")
    except Exception:  # not installed, or its encoding file cannot be loaded offline
        return estimate_tokens, f"estimate (~{CHARS_PER_TOKEN} chars/token)"
    return (lambda text: len(encoding.encode(text, disallowed_special=()))), "tiktoken o200k_base"


def message_tokens(
    messages: list[Mapping[str, Any]], count: Callable[[str], int], tools: list[Any] | None = None
) -> int:
    """The cookbook's ``num_tokens_from_messages``; non-text values are counted as their JSON."""
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            if key == "weight" or value is None:
                continue
            if key == "content":
                total += count(message_text(message))
            elif isinstance(value, str):
                total += count(value)
            else:
                total += count(orjson.dumps(value).decode())
            if key == "name":
                total += 1
    if tools:
        total += count(orjson.dumps(tools).decode())
    return total


def _content_ok(content: Any) -> bool:
    if isinstance(content, str):
        return bool(content.strip())
    if isinstance(content, list):
        return bool(content) and all(isinstance(part, Mapping) and "type" in part for part in content)
    return False


def _tool_call_errors(where: str, tool_calls: Any) -> list[str]:
    if not isinstance(tool_calls, list) or not tool_calls:
        return [f"{where}: tool_calls must be a non-empty list"]
    errors = []
    for n, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(call, Mapping) or not isinstance(call.get("id"), str) or not isinstance(function, Mapping):
            errors.append(f"{where}.tool_calls[{n}]: needs 'id' and 'function'")
        elif not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
            errors.append(f"{where}.tool_calls[{n}]: function needs string 'name' and 'arguments'")
    return errors


def validate_chat_example(example: Any) -> list[str]:
    """Format errors in one fine-tuning example (empty list = valid), as OpenAI would see them."""
    if not isinstance(example, Mapping):
        return ["example is not a JSON object"]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["missing 'messages' list"]
    errors: list[str] = []
    for n, message in enumerate(messages):
        where = f"messages[{n}]"
        if not isinstance(message, Mapping):
            errors.append(f"{where}: not an object")
            continue
        if unknown := sorted(set(message) - MESSAGE_KEYS):
            errors.append(f"{where}: unrecognized key(s) {', '.join(unknown)}")
        role = message.get("role")
        if role not in ROLES:
            errors.append(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        calls = message.get("tool_calls") or message.get("function_call")
        if not calls and not _content_ok(message.get("content")):
            errors.append(f"{where}: missing or empty content")
        if message.get("tool_calls") is not None:
            if role != "assistant":
                errors.append(f"{where}: only assistant messages carry tool_calls")
            errors += _tool_call_errors(where, message["tool_calls"])
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            errors.append(f"{where}: tool message needs 'tool_call_id'")
        if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
            errors.append(f"{where}: weight must be 0 or 1, on assistant messages only")
    if not any(isinstance(m, Mapping) and m.get("role") == "assistant" for m in messages):
        errors.append("no assistant message")
    tools = example.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, Mapping) for t in tools)):
        errors.append("tools must be a list of objects")
    return errors


def sanitize_messages(
    messages: list[dict[str, Any]], *, weight_history: bool = False
) -> tuple[list[dict[str, Any]], set[str]]:
    """Drop null values and response-only keys (refusal, annotations, audio...) from input turns.

    Returns the cleaned messages and the names of non-null keys that were dropped, so the caller
    can warn. With ``weight_history`` every assistant turn gets ``weight: 0`` (not trained on).
    """
    cleaned: list[dict[str, Any]] = []
    dropped: set[str] = set()
    for message in messages:
        kept = {k: v for k, v in message.items() if k in MESSAGE_KEYS and v is not None}
        dropped.update(k for k, v in message.items() if k not in MESSAGE_KEYS and v not in (None, [], {}))
        if weight_history and kept.get("role") == "assistant":
            kept["weight"] = 0
        cleaned.append(kept)
    return cleaned, dropped


def final_message(item: GoldenItem) -> dict[str, Any]:
    """The expected answer as the assistant message to train on."""
    message: dict[str, Any] = {"role": "assistant"}
    if item.expected_output:
        message["content"] = item.expected_output
    if item.expected_tool_calls:
        message["tool_calls"] = item.expected_tool_calls
    return message


def export_openai_chat(
    source: ExportSource,
    out: str | Path | None,
    /,
    *,
    train_on_history: bool = False,
    max_tokens_per_example: int = DEFAULT_MAX_TOKENS,
    count_tokens: Callable[[str], int] | None = None,
) -> ExportResult:
    """Write the chat fine-tuning file; items without an expected answer or invalid ones are skipped."""
    path = require_out("openai-chat", out)
    count, counter_name = (count_tokens, "custom") if count_tokens else token_counter()
    rows: list[dict[str, Any]] = []
    written: list[GoldenItem] = []
    skipped: list[SkippedItem] = []
    warnings: list[str] = []
    dropped_keys: set[str] = set()
    token_counts: list[int] = []
    for item in source.items:
        if not item.has_expected:
            skipped.append(SkippedItem(item.id, "no expected output"))
            continue
        messages, dropped = sanitize_messages(item.input, weight_history=not train_on_history)
        dropped_keys |= dropped
        row: dict[str, Any] = {"messages": [*messages, final_message(item)]}
        if item.tools:
            row["tools"] = item.tools
        if errors := validate_chat_example(row):
            skipped.append(SkippedItem(item.id, f"invalid: {errors[0]}"))
            continue
        tokens = message_tokens(row["messages"], count, item.tools)
        token_counts.append(tokens)
        if tokens > max_tokens_per_example:
            warnings.append(
                f"item {item.id}: ~{tokens:,} tokens exceeds the {max_tokens_per_example:,}-token limit per example "
                "(OpenAI truncates it)"
            )
        rows.append(row)
        written.append(item)
    require_rows("openai-chat", source, rows, skipped)
    if dropped_keys:
        warnings.append(f"dropped message keys OpenAI does not accept: {', '.join(sorted(dropped_keys))}")
    if len(rows) < MIN_EXAMPLES:
        warnings.append(f"only {len(rows)} examples; OpenAI fine-tuning needs at least {MIN_EXAMPLES}")
    sha = write_jsonl(path, rows)
    stats = {
        "token_counter": counter_name,
        "tokens_total": sum(token_counts),
        "tokens_max": max(token_counts),
        "over_limit": sum(t > max_tokens_per_example for t in token_counts),
    }
    return make_result(
        "openai-chat", source, path, written=written, skipped=skipped, sha256=sha, warnings=warnings, stats=stats
    )
