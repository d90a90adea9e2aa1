"""The ``workbench={...}`` argument of a wrapped call: validated once, cheaply, on the hot path."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidContextError
from ..models import Prompt

__all__ = ["CONTEXT_KEYS", "build_context"]

_STR_KEYS = ("session_id", "user_id", "variant", "parent_id")
CONTEXT_KEYS = frozenset(("prompt", "variables", "tags", "metadata", *_STR_KEYS))


def build_context(raw: Any) -> dict[str, Any]:
    """Check keys and types; return a JSON-ready dict. Raises InvalidContextError naming the key."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidContextError(f"workbench= must be a dict, not {type(raw).__name__}")
    unknown = raw.keys() - CONTEXT_KEYS
    if unknown:
        raise InvalidContextError(
            f"unknown key {sorted(unknown)[0]!r} in workbench=; expected any of: {', '.join(sorted(CONTEXT_KEYS))}"
        )
    ctx: dict[str, Any] = {}
    for key in _STR_KEYS:
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise InvalidContextError(f"workbench={{'{key}': ...}} must be a str, not {type(value).__name__}")
            ctx[key] = value
    prompt = raw.get("prompt")
    if prompt is not None:
        if not isinstance(prompt, Prompt):
            raise InvalidContextError(
                f"workbench={{'prompt': ...}} must be a Prompt from wb.prompts.register/get, "
                f"not {type(prompt).__name__}"
            )
        ctx["prompt"] = (prompt.id, prompt.name, prompt.version, prompt.content_hash)
    for key, kind in (("variables", dict), ("metadata", dict), ("tags", list)):
        value = raw.get(key)
        if value is not None:
            if key == "tags" and isinstance(value, tuple):
                value = list(value)
            if not isinstance(value, kind):
                raise InvalidContextError(
                    f"workbench={{'{key}': ...}} must be a {kind.__name__}, not {type(value).__name__}"
                )
            if key == "tags" and not all(isinstance(tag, str) for tag in value):
                raise InvalidContextError("workbench={'tags': ...} must be a list of str")
            ctx[key] = value
    return ctx
