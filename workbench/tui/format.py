"""Small text helpers shared by the screens: ages, one-line summaries, message rendering."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text

__all__ = ["age", "content_text", "last_user_text", "one_line", "pct", "render_messages"]


def age(value: datetime | None, now: datetime) -> str:
    """``3d``, ``5h``, ``12m``: how long a candidate has waited (coarse on purpose)."""
    if value is None:
        return ""
    seconds = max(0.0, (now - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def content_text(content: Any) -> str:
    """The text of a chat message's content (a string, or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text") or f"[{part.get('type', 'part')}]"))
            else:
                parts.append(str(part))
        return " ".join(parts)
    return "" if content is None else str(content)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return content_text(messages[-1].get("content")) if messages and isinstance(messages[-1], dict) else ""


def one_line(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


_ROLE_STYLE = {"system": "dim italic", "user": "bold", "assistant": "", "tool": "dim"}


def render_messages(messages: list[dict[str, Any]]) -> Text:
    """A conversation as rich Text: role in bold, content below, messages separated by a blank line."""
    out = Text()
    for index, message in enumerate(messages):
        if index:
            out.append("\n\n")
        role = str(message.get("role", "?")) if isinstance(message, dict) else "?"
        out.append(f"{role}\n", style="bold reverse" if role == "user" else "bold")
        body = content_text(message.get("content")) if isinstance(message, dict) else str(message)
        out.append(body, style=_ROLE_STYLE.get(role, ""))
    if not messages:
        out.append("(no input messages)", style="dim")
    return out
