"""The queue list: a Line-API widget over a window of rows (the screen pages rows in and out by keyset).

Why not DataTable: any cell update there invalidates every cached cell, so "accept" re-renders the
whole visible table (~45 ms at 140x40 on a CI-class core), over the 50 ms keypress budget. Here a
row is one cached Strip; moving the cursor or changing a row repaints only the lines involved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from ...store.candidates import QueueRow
from ..format import age, last_user_text, one_line

__all__ = ["COLUMNS", "QueueHeader", "QueueList", "header_text", "row_text"]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # 0 = take the rest of the line


COLUMNS: tuple[Column, ...] = (
    Column("mark", "", 2),
    Column("priority", "prio", 6),
    Column("signal", "signal", 11),
    Column("users", "users", 6),
    Column("prompt", "prompt@version", 20),
    Column("model", "model", 24),
    Column("age", "age", 5),
    Column("status", "status", 9),
    Column("input", "input", 0),
)

STATUS_STYLE = {"open": "", "accepted": "bold green", "rejected": "bold red", "skipped": "yellow", "gone": "italic red"}


def _cell(text: str, width: int) -> str:
    return one_line(text, width - 1).ljust(width) if width else one_line(text, 200)


def header_text() -> Text:
    return Text("".join(_cell(c.label, c.width) for c in COLUMNS), style="bold", no_wrap=True, end="")


def row_text(row: QueueRow, now: datetime, *, selected: bool, status: str | None = None) -> Text:
    """One queue line; ``status`` overrides the row's (after a decision, before the next page load)."""
    status = status or row.status
    values = {
        "mark": "●" if selected else "",
        "priority": f"{row.priority:.2f}",
        "signal": row.primary_signal or "",
        "users": str(row.users),
        "prompt": row.prompt_ref,
        "model": row.model_resolved or "",
        "age": age(row.created_at, now),
        "status": status,
        "input": last_user_text(row.input),
    }
    text = Text(no_wrap=True, end="")
    for column in COLUMNS:
        style = STATUS_STYLE.get(status, "") if column.key == "status" else ""
        if column.key == "mark":
            style = "bold"
        text.append(_cell(values[column.key], column.width), style=style)
    return text


class QueueHeader(Static):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(header_text(), **kwargs)  # type: ignore[arg-type]


class QueueList(ScrollView, can_focus=True):
    """Rows with a cursor; the owner supplies rows, selection and status overrides."""

    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move(-1000000)", "First", show=False),
        Binding("end", "move(1000000)", "Last", show=False),
        Binding("enter", "choose", "Open", show=False),
    ]
    COMPONENT_CLASSES = {"queue-list--cursor", "queue-list--selected"}
    DEFAULT_CSS = """
    QueueList { height: 1fr; overflow-x: hidden; }
    QueueList > .queue-list--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    QueueList:blur > .queue-list--cursor { background: $block-cursor-blurred-background; }
    QueueList > .queue-list--selected { background: $accent 25%; }
    """

    cursor: reactive[int] = reactive(0, always_update=True, init=False, repaint=False)  # repaint: 2 lines

    class Highlighted(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class PastEdge(Message):
        """A move ran past the loaded window: the screen loads more rows and then finishes the move."""

        def __init__(self, delta: int) -> None:
            super().__init__()
            self.delta = delta

    class Chosen(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, now: Callable[[], datetime] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.rows: list[QueueRow] = []
        self.selected: set[str] = set()
        self.status: dict[str, str] = {}  # candidate id -> status shown (decisions made here)
        self._now = now or (lambda: datetime.now(UTC))
        self._strips: dict[tuple[str, bool, bool, bool, str, int], Strip] = {}
        self._style_cache: tuple[Style, Style, Style] | None = None

    # ---- data
    def set_rows(self, rows: Sequence[QueueRow], cursor: int = 0, top: int | None = None) -> None:
        """Replace the window; ``top`` keeps the cursor's screen position when the window shifts."""
        self.rows = list(rows)
        self._strips.clear()
        size = Size(self.size.width, len(self.rows))
        if size != self.virtual_size:  # a layout pass only when the window's length changed
            self.virtual_size = size
        cursor = max(0, min(cursor, len(self.rows) - 1))
        self.set_reactive(QueueList.cursor, cursor)
        if top is not None:
            self.scroll_to(y=max(0, top), animate=False, immediate=True, force=True)
        self._show_cursor()
        self.refresh()
        if self.rows:
            self.post_message(self.Highlighted(cursor))

    def index_of(self, candidate_id: str) -> int | None:
        for index, row in enumerate(self.rows):
            if row.id == candidate_id:
                return index
        return None

    def refresh_row(self, index: int) -> None:
        self.refresh(Region(0, index - int(self.scroll_y), self.size.width, 1))

    @property
    def current(self) -> QueueRow | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    # ---- cursor
    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh_row(old)
        self.refresh_row(new)
        self._show_cursor()
        if self.rows:
            self.post_message(self.Highlighted(new))

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def _show_cursor(self) -> None:
        height = max(1, self.size.height)
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_move(self, delta: int) -> None:
        if self.rows:
            target = self.cursor + delta
            if not 0 <= target < len(self.rows):  # keys pressed faster than the next page arrives are kept
                self.post_message(self.PastEdge(target - self.validate_cursor(target)))
            self.cursor = target

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.size.height - 1))

    def action_choose(self) -> None:
        if self.rows:
            self.post_message(self.Chosen(self.cursor))

    def on_click(self, event: object) -> None:
        y = getattr(event, "y", None)
        if y is None:
            return
        index = int(self.scroll_y) + int(y)
        if 0 <= index < len(self.rows):
            if index == self.cursor:
                self.post_message(self.Chosen(index))
            self.cursor = index

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # theme or focus changed: cached lines carry the old colours
        self._style_cache = None

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows))
        self._strips.clear()

    # ---- rendering
    def _styles(self) -> tuple[Style, Style, Style]:
        # Widget.rich_style walks the DOM each call (~1 ms here); look the styles up once per style change.
        if self._style_cache is None:
            self._style_cache = (
                self.rich_style,
                self.get_component_rich_style("queue-list--selected"),
                self.get_component_rich_style("queue-list--cursor"),
            )
        return self._style_cache

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.size.width
        base, selected_style, cursor_style = self._styles()
        if not 0 <= index < len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[index]
        is_cursor = index == self.cursor
        is_selected = row.id in self.selected
        status = self.status.get(row.id, row.status)
        key = (row.id, is_cursor and self.has_focus, is_cursor, is_selected, status, width)
        strip = self._strips.get(key)
        if strip is None:
            text = row_text(row, self._now(), selected=is_selected, status=status)
            text.truncate(width, overflow="ellipsis", pad=True)
            segments: list[Segment] = list(text.render(self.app.console, end=""))
            overlay = Style()
            if is_selected:
                overlay += selected_style
            if is_cursor:
                overlay += cursor_style
            strip = Strip(segments).apply_style(base + overlay).adjust_cell_length(width, base)
            if len(self._strips) > 4096:
                self._strips.clear()
            self._strips[key] = strip
        return strip
