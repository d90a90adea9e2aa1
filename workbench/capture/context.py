"""The ``workbench={...}`` argument of a wrapped call: validated once, cheaply, before the request is sent.

Everything the store would refuse later is refused here instead, with the key named: a call whose
context could not be stored would otherwise get a trace id and then lose its trace at ingest.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import InvalidContextError
from ..models import Prompt

__all__ = ["CONTEXT_KEYS", "MAX_TEXT", "build_context"]

_STR_KEYS = ("session_id", "user_id", "variant", "parent_id")
CONTEXT_KEYS = frozenset(("prompt", "variables", "tags", "metadata", *_STR_KEYS))
MAX_TEXT = 200  # the width of the traces columns session_id, user_id, variant (tests/test_wrap_context.py checks)
_TRACE_ID_LEN = 26


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidContextError(f"workbench={{'{key}': ...}} must be a str, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidContextError(f"workbench={{'{key}': ...}} contains a NUL character")
    if key == "parent_id":
        if len(value) != _TRACE_ID_LEN:
            raise InvalidContextError(
                f"workbench={{'parent_id': {value[:40]!r}}} is not a trace id (26 characters, from workbench.trace_id)"
            )
    elif len(value) > MAX_TEXT:
        raise InvalidContextError(f"workbench={{'{key}': ...}} is {len(value)} characters; at most {MAX_TEXT}")
    return value


def _json(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidContextError(f"workbench={{'{key}': ...}} must be a dict, not {type(value).__name__}")
    if value:
        try:
            orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise InvalidContextError(f"workbench={{'{key}': ...}} cannot be stored as JSON: {exc}") from None
    return value


def build_context(raw: Any) -> dict[str, Any]:
    """Check keys and values; return a JSON-ready dict. Raises InvalidContextError naming the key."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidContextError(f"workbench= must be a dict, not {type(raw).__name__}")
    unknown = raw.keys() - CONTEXT_KEYS
    if unknown:
        name = sorted(map(str, unknown))[0]
        raise InvalidContextError(
            f"unknown key {name!r} in workbench=; expected any of: {', '.join(sorted(CONTEXT_KEYS))}"
        )
    ctx: dict[str, Any] = {}
    for key in _STR_KEYS:
        value = raw.get(key)
        if value is not None:
            # the common case checked inline (a call per key was a measurable share of a wrapped call)
            if type(value) is str and len(value) <= MAX_TEXT and "\x00" not in value and key != "parent_id":
                ctx[key] = value
            else:
                ctx[key] = _text(key, value)
    prompt = raw.get("prompt")
    if prompt is not None:
        if not isinstance(prompt, Prompt):
            raise InvalidContextError(
                f"workbench={{'prompt': ...}} must be a Prompt from wb.prompts.register/get, "
                f"not {type(prompt).__name__}"
            )
        ctx["prompt"] = (prompt.id, prompt.name, prompt.version, prompt.content_hash)
    for key in ("variables", "metadata"):
        value = raw.get(key)
        if value is not None:
            ctx[key] = _json(key, value)
    tags = raw.get("tags")
    if tags is not None:
        if isinstance(tags, tuple):
            tags = list(tags)
        if not isinstance(tags, list):
            raise InvalidContextError(f"workbench={{'tags': ...}} must be a list, not {type(tags).__name__}")
        for tag in tags:
            if not isinstance(tag, str):
                raise InvalidContextError("workbench={'tags': ...} must be a list of str")
            if "\x00" in tag:
                raise InvalidContextError("workbench={'tags': ...} contains a NUL character")
        ctx["tags"] = tags
    return ctx
