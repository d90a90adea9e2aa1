"""Every key binding of the triage app, in one place (the help screen is generated from these lists)."""

from __future__ import annotations

from textual.binding import Binding

__all__ = ["DETAIL", "DIALOG", "GLOBAL", "OVERVIEW", "QUEUE", "help_sections"]

# On the three main screens only (not the dialogs, where these letters are text or would surprise).
GLOBAL: list[Binding] = [
    Binding("question_mark", "app.help", "Help", key_display="?"),
    Binding("o", "app.overview", "Overview"),
    Binding("q", "app.quit", "Quit"),
]

# Decision keys shared by the queue and the detail view: one key, written to the store at once.
_DECIDE: list[Binding] = [
    Binding("a", "decide('accept')", "Accept"),
    Binding("r", "decide('reject')", "Reject"),
    Binding("s", "decide('skip')", "Skip"),
    Binding("e", "edit", "Edit expected", key_display="e"),
    Binding("l", "labels", "Labels", show=False),
    Binding("n", "notes", "Notes", show=False),
    Binding("u", "undo", "Undo"),
]

QUEUE: list[Binding] = [
    Binding("enter", "open", "Open"),
    *_DECIDE,
    Binding("space", "toggle_select", "Select", key_display="space"),
    Binding("x", "toggle_select", "Select", show=False),
    Binding("slash", "search", "Search", key_display="/"),
    Binding("f", "filter", "Filter"),
    Binding("t", "cycle_status", "Cycle status", show=False),
    Binding("c", "clear_filters", "Clear filters", show=False),
    Binding("escape", "escape", "Clear", show=False),
    Binding("j", "cursor(1)", "Down", show=False),
    Binding("k", "cursor(-1)", "Up", show=False),
    Binding("g", "cursor_home", "Top", show=False),
    Binding("ctrl+r", "reload", "Reload", show=False),
    *GLOBAL,
]

DETAIL: list[Binding] = [
    Binding("escape", "back", "Back"),
    Binding("backspace", "back", "Back", show=False),
    *_DECIDE,
    Binding("right_square_bracket", "step(1)", "Next", key_display="]"),
    Binding("left_square_bracket", "step(-1)", "Prev", key_display="["),
    Binding("j", "scroll(1)", "Scroll down", show=False),
    Binding("k", "scroll(-1)", "Scroll up", show=False),
    *GLOBAL,
]

OVERVIEW: list[Binding] = [
    Binding("escape", "back", "Back"),
    Binding("ctrl+r", "reload", "Reload"),
    Binding("question_mark", "app.help", "Help", key_display="?"),
    Binding("q", "app.quit", "Quit"),
]

DIALOG: list[Binding] = [
    Binding("escape", "cancel", "Cancel"),
    Binding("ctrl+s", "save", "Save"),
]

_EXTRA = {
    "Queue": [
        ("up/down, j/k, pgup/pgdn", "Move (more rows load as you scroll)"),
        ("a / r / s", "With rows selected: bulk accept / reject / skip"),
        (
            "/ then type",
            "Search messages, output, expected output, notes and labels as you type: 3+ characters "
            "match anywhere, ignoring case; 1-2 match the start of a word; a candidate id finds it",
        ),
    ],
    "Anywhere": [("ctrl+p", "Command palette"), ("ctrl+q", "Quit")],
}


def _describe(bindings: list[Binding]) -> list[tuple[str, str]]:
    seen: dict[str, list[str]] = {}
    for binding in bindings:
        key = binding.key_display or binding.key
        seen.setdefault(binding.description, [])
        if key not in seen[binding.description]:
            seen[binding.description].append(key)
    return [(" / ".join(keys), description) for description, keys in seen.items()]


def help_sections() -> dict[str, list[tuple[str, str]]]:
    """(keys, what they do) per screen, for the ``?`` screen."""
    return {
        "Queue": _describe(QUEUE) + _EXTRA["Queue"],
        "Detail": _describe(DETAIL),
        "Overview": _describe(OVERVIEW),
        "Dialogs (edit, labels, notes, filter)": _describe(DIALOG),
        "Anywhere": _EXTRA["Anywhere"],
    }
