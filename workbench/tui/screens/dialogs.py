"""Modal dialogs (edit text, filter, help) and the full-screen error message."""

from __future__ import annotations

from typing import get_args

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from ...models import Signal
from ...store.candidates import STATUSES, Facets, QueueFilter
from .. import keymap
from ..widgets.keybar import KeyBar

__all__ = ["ErrorScreen", "FilterDialog", "HelpScreen", "TextDialog"]


class TextDialog(ModalScreen[str | None]):
    """Edit a piece of text (expected output, notes: a TextArea; labels: one line). Returns None on cancel."""

    BINDINGS = keymap.DIALOG

    def __init__(self, title: str, text: str, *, multiline: bool = True, hint: str = "") -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._text = text
        self._multiline = multiline
        self._hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self._title, id="dialog-title")
            if self._multiline:
                yield TextArea(self._text, id="dialog-text", soft_wrap=True, tab_behavior="indent")
            else:
                yield Input(self._text, id="dialog-input")
            yield Label(
                self._hint or ("ctrl+s save · esc cancel" if self._multiline else "enter save · esc cancel"),
                classes="hint",
            )
        yield KeyBar()

    def on_mount(self) -> None:
        widget = self.query_one("#dialog-text" if self._multiline else "#dialog-input")
        widget.focus()
        if isinstance(widget, TextArea):
            widget.move_cursor(widget.document.end)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_save(self) -> None:
        if self._multiline:
            self.dismiss(self.query_one("#dialog-text", TextArea).text)
        else:
            self.dismiss(self.query_one("#dialog-input", Input).value)

    def action_cancel(self) -> None:
        self.dismiss(None)


_ANY = "__any__"


class FilterDialog(ModalScreen[QueueFilter | None]):
    """Pick status, signal kind, prompt version and model version (values present in the store)."""

    BINDINGS = keymap.DIALOG

    def __init__(self, current: QueueFilter, facets: Facets | None) -> None:
        super().__init__(classes="dialog")
        self._current = current
        self._loaded = facets is not None
        # Until the store's values arrive (a scan of a big store takes seconds), offer the known vocabulary.
        self._facets = facets or Facets({}, sorted(get_args(Signal)), [], [])

    def _select(self, key: str, values: list[str], current: str | None, counts: dict[str, int] | None = None) -> Select:
        if current and current not in values:
            values = [*values, current]
        options = [("any", _ANY)] + [(f"{v} ({counts[v]:,})" if counts and v in counts else v, v) for v in values]
        return Select(options, value=current or _ANY, allow_blank=False, id=f"filter-{key}")

    def compose(self) -> ComposeResult:
        f, facets = self._current, self._facets
        with Vertical(id="dialog-box"):
            yield Label("Filter the queue", id="dialog-title")
            with Horizontal(classes="field"):
                yield Label("status", classes="field-label")
                yield self._select("status", list(STATUSES), f.status, facets.statuses)
            with Horizontal(classes="field"):
                yield Label("signal", classes="field-label")
                yield self._select("signal", facets.signals, f.signal)
            with Horizontal(classes="field"):
                yield Label("prompt", classes="field-label")
                yield self._select("prompt", facets.prompts, f.prompt)
            with Horizontal(classes="field"):
                yield Label("model", classes="field-label")
                yield self._select("model", facets.models, f.model)
            with Horizontal(id="dialog-buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Clear", id="clear")
                yield Button("Cancel", id="cancel")
            yield Label("ctrl+s apply · esc cancel", classes="hint")
            yield Label("reading the prompt versions and models in the store…", id="filter-loading", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#filter-status", Select).focus()
        if not self._loaded:  # the store's values are still being read: fill them in when they arrive
            self.run_worker(self._fill_when_loaded(), group="facets")

    async def _fill_when_loaded(self) -> None:
        facets = await self.app.wait_for_facets()  # type: ignore[attr-defined]
        if facets is None or not self.is_attached:
            return
        for key, values in (("signal", facets.signals), ("prompt", facets.prompts), ("model", facets.models)):
            select = self.query_one(f"#filter-{key}", Select)
            current = select.value
            known = sorted({*values, *([current] if isinstance(current, str) and current != _ANY else [])})
            select.set_options([("any", _ANY), *((v, v) for v in known)])
            select.value = current if current in (_ANY, *known) else _ANY
        self.query_one("#filter-loading").display = False

    def _value(self, key: str) -> str | None:
        value = self.query_one(f"#filter-{key}", Select).value
        return None if value in (_ANY, Select.NULL) else str(value)

    def action_save(self) -> None:
        self.dismiss(
            QueueFilter(
                status=self._value("status"),
                signal=self._value("signal"),
                prompt=self._value("prompt"),
                model=self._value("model"),
                text=self._current.text,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self.action_save()
        elif event.button.id == "clear":
            self.dismiss(QueueFilter(status=None, text=self._current.text))
        else:
            self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """``?``: every key, generated from the keymap so it cannot drift from the bindings."""

    BINDINGS = [("escape", "close", "Close"), ("question_mark", "close", "Close"), ("q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Label("Keys", id="dialog-title")
            for section, rows in keymap.help_sections().items():
                yield Label(section, classes="help-section")
                table = Table(box=None, show_header=False, pad_edge=False)
                table.add_column(style="bold", min_width=24)
                table.add_column()
                for keys, what in rows:
                    table.add_row(keys, what)
                yield Static(table, classes="help-rows")
            yield Label(
                "Every decision is written to the store at once (append-only log: who, when, before/after).",
                classes="hint",
            )
        yield KeyBar()

    def action_close(self) -> None:
        self.dismiss(None)


class ErrorScreen(Screen[None]):
    """A problem the app cannot work around (store unreachable, schema too new): say it plainly."""

    BINDINGS = [("q", "app.quit", "Quit"), ("escape", "app.quit", "Quit")]

    def __init__(self, title: str, message: str, advice: str = "") -> None:
        super().__init__()
        self._title, self._message, self._advice = title, message, advice

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            yield Label(self._title, id="error-title")
            yield Static(self._message, id="error-message", markup=False)
            if self._advice:
                yield Static(self._advice, id="error-advice", markup=False)
            yield Label("press q to quit", classes="hint")
        yield KeyBar()
