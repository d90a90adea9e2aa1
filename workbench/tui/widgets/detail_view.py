"""A scrollable document of titled sections, rendered to lines once and painted line by line.

Eight Statics with tables cost a full layout pass (each one rendered twice: to measure, then to paint)
on every candidate shown; here the sections are rendered once at the current width and scrolling
only paints the visible lines.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

__all__ = ["DetailView"]


class DetailView(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
    ]
    COMPONENT_CLASSES = {"detail-view--border", "detail-view--title"}
    DEFAULT_CSS = """
    DetailView { height: 1fr; overflow-x: hidden; scrollbar-gutter: stable; }
    DetailView > .detail-view--border { color: $primary 60%; }
    DetailView > .detail-view--title { color: $primary; text-style: bold; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sections: list[tuple[str, RenderableType]] = []
        self._lines: list[Strip] = []
        self._width = 0
        self._theme = ""

    def set_sections(self, sections: list[tuple[str, RenderableType]]) -> None:
        self.sections = sections
        self._layout_lines()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def text(self) -> str:
        """The rendered document as plain text (what a reader sees, for tests and copying)."""
        return "\n".join(strip.text for strip in self._lines)

    def _layout_lines(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        if width <= 0:
            return
        border = self.get_component_rich_style("detail-view--border")
        title_style = self.get_component_rich_style("detail-view--title")
        panels = [
            Panel(
                body,
                title=Text(f" {title} ", style=title_style),
                title_align="left",
                box=box.ROUNDED,
                border_style=border,
                padding=(0, 1),
                expand=True,
            )
            for title, body in self.sections
        ]
        console = self.app.console
        options = console.options.update(width=width, height=None, highlight=False)
        base = self.rich_style
        lines = console.render_lines(Group(*panels), options, style=base, pad=True)
        self._lines = [Strip(line, width) for line in lines]
        self._width = width
        self._theme = self.app.theme
        self.virtual_size = Size(width, len(self._lines))

    def on_resize(self) -> None:
        if (self.scrollable_content_region.width or self.size.width) != self._width:
            self._layout_lines()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted and self.sections and self.app.theme != self._theme:
            self._layout_lines()  # theme changed: colours are baked into the lines

    def render_line(self, y: int) -> Strip:
        index = y + int(self.scroll_y)
        if 0 <= index < len(self._lines):
            return self._lines[index]
        return Strip.blank(self.size.width, self.rich_style)
