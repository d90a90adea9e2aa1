"""The queue: candidates by priority, a window of rows paged in by keyset as the cursor moves.

Queries run off the UI thread; a newer filter or search makes older results stale (``generation``),
and at most one first-page query runs at a time (typing fast coalesces into the latest text).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Input, Static

from ...store.candidates import STATUSES, QueueFilter, QueueRow, count_queue, queue_page, search_term
from .. import keymap
from ..decisions import Outcome, describe_error
from ..format import last_user_text, one_line
from ..widgets.keybar import KeyBar
from ..widgets.queue_list import QueueHeader, QueueList
from .actions import TriageActions
from .dialogs import FilterDialog

if TYPE_CHECKING:
    from ..app import TriageApp

__all__ = ["EMPTY_HELP", "QueueScreen"]

T = TypeVar("T")
PAGE = 100  # rows per keyset query
WINDOW = 600  # rows kept in memory at most; older ones are dropped and re-read if the user goes back
PREFETCH = 30  # load the next page when the cursor or the view is this close to the window's edge
SEARCH_COUNT_CAP = 10_000
SEARCH_COUNT_DELAY = 0.4  # seconds of no typing before a search is counted
FACETS_DELAY = 1.0  # seconds after the first page before the filter values are read

EMPTY_HELP = """\
[b]No candidates yet.[/b] The queue fills from captured LLM calls that drew negative or mixed feedback.

[b]1. Capture your app's calls[/b] (two lines):

    wb = workbench.open()
    client = wb.wrap(OpenAI())

[b]2. Send feedback[/b] with wb.feedback.thumbs(response.id, up=False), or let [b]workbench mine[/b] find
   implicit signals (re-asks, regenerations, pushback).

[b]Or try it now with sample data:[/b]

    workbench demo

Then run [b]workbench[/b] again. Press q to quit."""


class QueueScreen(TriageActions, Screen[None]):
    BINDINGS = keymap.QUEUE
    app: TriageApp

    def __init__(self) -> None:
        super().__init__(id="queue-screen")
        self.flt = QueueFilter()
        self.generation = 0
        self.more_below = False
        self.more_above = False
        self.total: int | None = None
        self.store_empty = False
        self.loaded = False
        self.shown_generation = 0  # the generation whose first page is on screen
        self._first_busy = False
        self._first_queued: str | bool | None = False
        self._edge_busy = False
        self._pending_move = 0  # rows the user moved past the loaded window, applied once the page arrives

    def compose(self) -> ComposeResult:
        yield Static(id="queue-status")
        yield Input(placeholder="/ search input, output, notes, labels (incremental)", id="search", compact=True)
        yield QueueHeader(id="queue-header")
        yield QueueList(now=self.app.now, id="queue")
        yield Static(id="queue-preview")
        yield Static(EMPTY_HELP, id="queue-empty")
        yield KeyBar()

    @property
    def queue_list(self) -> QueueList:
        return self.query_one(QueueList)

    def on_mount(self) -> None:
        self.queue_list.focus()
        self.reload()

    # ---------------------------------------------------------------- loading
    async def _query(self, fn: Callable[[Any], T]) -> T:
        store = self.app.store

        def run() -> T:
            with store.read() as conn:
                return fn(conn)

        return await asyncio.to_thread(run)

    def reload(self, focus_id: str | None = None) -> None:
        """Show page one of the current filter (keeping the cursor on ``focus_id`` if it is there)."""
        self.generation += 1
        self._pending_move = 0
        self._render_status()
        if self._first_busy:
            self._first_queued = focus_id if focus_id else True
            return
        self._first_busy = True
        self.run_worker(self._load_first(self.generation, self.flt, focus_id), group="first")

    async def _load_first(self, gen: int, flt: QueueFilter, focus_id: str | None) -> None:
        rows: list[QueueRow] | None = None
        empty = False
        try:
            rows = await self._query(lambda conn: queue_page(conn, flt, limit=PAGE + 1))
            if not rows and flt == QueueFilter():
                empty = await self._query(lambda conn: count_queue(conn, QueueFilter(status=None), cap=1) == 0)
        except Exception as exc:
            self.app.report_error(f"could not load the queue: {describe_error(exc)}")
        finally:
            self._first_busy = False
        if self._first_queued is not False:
            queued, self._first_queued = self._first_queued, False
            self.reload(queued if isinstance(queued, str) else None)
            return
        if rows is None or gen != self.generation or not self.is_attached:
            return
        self.loaded = True
        self.shown_generation = gen
        self.store_empty = empty
        self.more_below, self.more_above = len(rows) > PAGE, False
        rows = rows[:PAGE]
        lst = self.queue_list
        lst.status.clear()
        cursor = next((i for i, r in enumerate(rows) if r.id == focus_id), 0)
        lst.set_rows(rows, cursor)
        self.total = None
        self._render_empty()
        self._render_status()
        if self.app.facets is None:  # filter values: a scan of the store, so after the first screen is up
            self.set_timer(FACETS_DELAY, self.app.load_facets)
        if search_term(flt.text):  # a search count can read many index matches: wait until the typing stops
            self.set_timer(SEARCH_COUNT_DELAY, lambda: self._count_if_current(gen, flt))
        else:  # after the new page is on screen: a count can scan most of the table
            self.call_after_refresh(self._count_if_current, gen, flt)

    def _count_if_current(self, gen: int, flt: QueueFilter) -> None:
        if gen == self.generation:
            self.run_worker(self._load_count(gen, flt), group="count", exclusive=True)

    async def _load_count(self, gen: int, flt: QueueFilter) -> None:
        cap = SEARCH_COUNT_CAP if search_term(flt.text) else None

        def count(conn: Any) -> int | None:
            return count_queue(conn, flt, cap=cap) if gen == self.generation else None

        try:
            total = await self._query(count)
        except Exception as exc:
            self.app.report_error(f"could not count the queue: {describe_error(exc)}")
            return
        if total is not None and gen == self.generation and self.is_attached:
            self.total = total
            self._render_status()

    def _check_edges(self) -> None:
        lst = self.queue_list
        if self._edge_busy or not lst.rows:
            return
        top = int(lst.scroll_y)
        bottom = top + lst.size.height
        if self.more_below and len(lst.rows) - max(lst.cursor, bottom) <= PREFETCH:
            self._edge_busy = True
            self.run_worker(self._load_edge(self.generation, self.flt, "below", lst.rows[-1]), group="edge")
        elif self.more_above and min(lst.cursor, top) <= PREFETCH:
            self._edge_busy = True
            self.run_worker(self._load_edge(self.generation, self.flt, "above", lst.rows[0]), group="edge")

    async def _load_edge(self, gen: int, flt: QueueFilter, side: str, anchor: QueueRow) -> None:
        try:
            if side == "below":
                rows = await self._query(lambda conn: queue_page(conn, flt, after=anchor.cursor, limit=PAGE + 1))
            else:
                rows = await self._query(lambda conn: queue_page(conn, flt, before=anchor.cursor, limit=PAGE + 1))
        except Exception as exc:
            self.app.report_error(f"could not load more rows: {describe_error(exc)}")
            return
        finally:
            self._edge_busy = False
        if gen != self.generation or not self.is_attached:
            return
        lst = self.queue_list
        cursor, top = lst.cursor, int(lst.scroll_y)
        if side == "below":
            self.more_below = len(rows) > PAGE
            window = lst.rows + rows[:PAGE]
            if len(window) > WINDOW:
                drop = len(window) - WINDOW
                window, cursor, top = window[drop:], cursor - drop, top - drop
                self.more_above = True
        else:
            self.more_above = len(rows) > PAGE
            rows = rows[-PAGE:]
            window = rows + lst.rows
            cursor, top = cursor + len(rows), top + len(rows)
            if len(window) > WINDOW:
                window = window[:WINDOW]
                self.more_below = True
        if self._pending_move and (self._pending_move > 0) == (side == "below"):
            cursor += self._pending_move
        self._pending_move = 0
        lst.set_rows(window, cursor, top)
        self._check_edges()

    def on_queue_list_past_edge(self, message: QueueList.PastEdge) -> None:
        more = self.more_below if message.delta > 0 else self.more_above
        if more:  # every key counts: three presses past the edge are three rows once the page is in
            self._pending_move += message.delta
        self._check_edges()

    # ---------------------------------------------------------------- display
    def _render_status(self) -> None:
        f = self.flt
        what = f.status or "all"
        if self.total is None:
            count = "…"
        elif search_term(f.text) and self.total >= SEARCH_COUNT_CAP:
            count = f"{SEARCH_COUNT_CAP:,}+"
        else:
            count = f"{self.total:,}"
        if self.store_empty:
            self.query_one("#queue-status", Static).update(Text("empty store", style="bold"), layout=False)
            return
        parts = [f"[b]{count}[/b] {what}"]
        parts += [
            f"{name}={value}"
            for name, value in (("signal", f.signal), ("prompt", f.prompt), ("model", f.model))
            if value
        ]
        if f.text:
            waiting = "" if search_term(f.text) else " (type a letter or digit to search)"
            parts.append(f"search “{one_line(f.text, 30)}”{waiting}")
        if self.queue_list.selected:
            parts.append(f"[b]{len(self.queue_list.selected)} selected[/b] (a/r/s act on all)")
        pending = len(self.app.desk.pending) if self.app.desk else 0
        if pending:
            parts.append(f"[b red]{pending} decision(s) not saved yet — retrying[/]")
        # fixed-size boxes: no layout pass (a layout of this screen costs more than the whole keypress budget)
        self.query_one("#queue-status", Static).update(Text.from_markup(" · ".join(parts)), layout=False)

    def _render_empty(self) -> None:
        """An empty store shows how to get data in; its keys stay live (nothing can take focus)."""
        self.query_one("#queue-empty").display = self.store_empty
        for name in ("#queue", "#queue-header", "#search", "#queue-preview"):
            self.query_one(name).display = not self.store_empty
        if self.store_empty:
            self.set_focus(None)
        elif self.focused is None:
            self.queue_list.focus()
        self.refresh_bindings()
        if not self.store_empty and not self.queue_list.rows:
            hint = "Esc clears the search" if self.flt.text else "Press t to show another status, c to clear filters"
            self.query_one("#queue-preview", Static).update(
                Text(f"No candidates match. {hint}.", style="italic"), layout=False
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """In an empty store only help, overview and quit are offered (the footer hides the rest)."""
        return not self.store_empty or action in ("app.help", "app.overview", "app.quit", "reload")

    def on_queue_list_highlighted(self, message: QueueList.Highlighted) -> None:
        row = self.queue_list.current
        if row is not None:
            preview = Text(no_wrap=False)
            preview.append("input  ", style="bold")
            preview.append(one_line(last_user_text(row.input), 400))
            preview.append("\noutput ", style="bold")
            preview.append(one_line(row.output_head, 400) or "(no output)")
            preview.append(f"\n{row.id} · {row.count} trace(s)", style="dim")
            if row.labels:
                preview.append(" · labels: " + ", ".join(row.labels), style="dim")
            self.query_one("#queue-preview", Static).update(preview, layout=False)
        self._check_edges()

    def on_queue_list_chosen(self, message: QueueList.Chosen) -> None:
        self.action_open()

    # ---------------------------------------------------------------- navigation used by the detail view
    def neighbor(self, candidate_id: str, step: int) -> str | None:
        """Move the cursor ``step`` rows from ``candidate_id`` and return the id there (None at an edge)."""
        lst = self.queue_list
        index = lst.index_of(candidate_id)
        if index is None:
            return None
        target = index + step
        if not 0 <= target < len(lst.rows):
            return None
        lst.cursor = target
        return lst.rows[target].id

    def focus_candidate(self, candidate_id: str) -> None:
        index = self.queue_list.index_of(candidate_id)
        if index is not None:
            self.queue_list.cursor = index

    # ---------------------------------------------------------------- TriageActions hooks
    def target_ids(self) -> list[str]:
        lst = self.queue_list
        if lst.selected:
            return [row.id for row in lst.rows if row.id in lst.selected] + sorted(
                lst.selected - {row.id for row in lst.rows}
            )
        return [lst.current.id] if lst.current else []

    def current_id(self) -> str | None:
        row = self.queue_list.current
        return row.id if row else None

    def after_decision(self, action: str, outcome: Outcome, ids: list[str]) -> None:
        self.apply_outcome(outcome)
        lst = self.queue_list
        if action in ("accept", "reject", "skip") and not outcome.error:
            if lst.selected:
                lst.selected.clear()
                lst.refresh()
            else:
                lst.cursor = lst.cursor + 1
        elif action == "undo" and outcome.recorded:
            self.focus_candidate(next(iter(outcome.recorded)))
        self._render_status()

    def refresh_count(self) -> None:
        self.run_worker(self._load_count(self.generation, self.flt), group="count", exclusive=True)

    def apply_outcome(self, outcome: Outcome) -> None:
        """Show decisions made anywhere (queue or detail) on the rows in the window."""
        lst = self.queue_list
        for cid, decision in outcome.recorded.items():
            if "status" in decision.after:
                lst.status[cid] = decision.after["status"]
        for cid in outcome.missing:
            lst.status[cid] = "gone"
        for cid in [*outcome.recorded, *outcome.missing]:
            index = lst.index_of(cid)
            if index is not None:
                lst.refresh_row(index)
        self._adjust_total(outcome)

    def _adjust_total(self, outcome: Outcome) -> None:
        """Keep the count right without re-counting (a count of a million rows is a scan): a status
        change moves a row into or out of a status filter; the other filters do not depend on status."""
        if self.total is None or self.flt.status is None:
            return
        for decision in outcome.recorded.values():
            old, new = decision.before.get("status"), decision.after.get("status", decision.before.get("status"))
            if old != new:
                self.total += (new == self.flt.status) - (old == self.flt.status)
        self.total = max(0, self.total)
        self._render_status()
        if outcome.missing:
            self.refresh_count()  # a deleted row's old status is unknown here: count again (rare)

    # ---------------------------------------------------------------- actions
    def action_open(self) -> None:
        if self.focused is self.query_one("#search"):
            self.queue_list.focus()
            return
        row = self.queue_list.current
        if row is not None:
            self.app.open_detail(row.id)

    def action_cursor(self, delta: int) -> None:
        self.queue_list.action_move(delta)

    def action_cursor_home(self) -> None:
        if self.more_above:
            self.reload()
        else:
            self.queue_list.cursor = 0

    def action_toggle_select(self) -> None:
        lst = self.queue_list
        row = lst.current
        if row is None:
            return
        lst.selected.symmetric_difference_update({row.id})
        lst.refresh_row(lst.cursor)
        lst.cursor = lst.cursor + 1
        self._render_status()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        text = event.value.strip() or None
        if text == self.flt.text:
            return
        searched = search_term(self.flt.text)
        self.flt = replace(self.flt, text=text)
        if search_term(text) == searched:  # e.g. "#" typed first: nothing to search yet, the rows stay
            self._render_status()
        else:
            self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.queue_list.focus()

    def action_escape(self) -> None:
        search = self.query_one("#search", Input)
        if self.focused is search:
            self.queue_list.focus()
        elif self.queue_list.selected:
            self.queue_list.selected.clear()
            self.queue_list.refresh()
            self._render_status()
        elif search.value:
            search.value = ""

    def action_filter(self) -> None:
        if self.app.facets is None:
            self.app.load_facets()  # normally already read in the background after the first page
        self.app.push_screen(FilterDialog(self.flt, self.app.facets), self._set_filter)

    def _set_filter(self, flt: QueueFilter | None) -> None:
        if flt is not None and flt != self.flt:
            self.flt = flt
            self.reload()

    def set_status(self, status: str | None) -> None:
        self._set_filter(replace(self.flt, status=status))

    def action_cycle_status(self) -> None:
        order: list[str | None] = [*STATUSES, None]
        index = order.index(self.flt.status) if self.flt.status in order else -1
        self.set_status(order[(index + 1) % len(order)])

    def action_clear_filters(self) -> None:
        self.query_one("#search", Input).value = ""
        self._set_filter(QueueFilter())

    def action_reload(self) -> None:
        row = self.queue_list.current
        self.reload(row.id if row else None)
        self.app.load_facets()
