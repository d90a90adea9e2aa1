"""The triage app: a store is injected (tests pass a temporary one) or opened from a URL inside the app,
so an unreachable store or a too-new schema is a clear screen, not a traceback."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.screen import Screen

from ..errors import SchemaTooNewError, WorkbenchError
from ..models import default_actor
from ..store import Store, open_store
from ..store.candidates import STATUSES, Facets, queue_facets
from .decisions import DecisionDesk, Outcome, describe_error
from .screens.detail import DetailScreen
from .screens.dialogs import ErrorScreen, HelpScreen
from .screens.overview import OverviewScreen
from .screens.queue import QueueScreen

__all__ = ["TriageApp", "default_actor", "run_triage"]

_RETRY_SECONDS = 5.0


class TriageApp(App[None]):
    """Work the candidate queue from the keyboard; every decision is written to the store at once."""

    CSS_PATH = "triage.tcss"
    TITLE = "workbench triage"

    def __init__(
        self,
        store: Store | None = None,
        *,
        store_url: str | None = None,
        actor: str | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        self.store: Store = store  # type: ignore[assignment]  # set in on_mount when opened from a URL
        self._store_url = store_url
        self._owns_store = store is None
        self.actor = actor or default_actor()
        self.now = now or (lambda: datetime.now(UTC))
        self.desk: DecisionDesk | None = None
        self.facets: Facets | None = None
        self._facets_task: asyncio.Future[None] | None = None
        self.queue_screen: QueueScreen | None = None
        self.detail_screen: DetailScreen | None = None
        self.unsaved_path: Path | None = None
        self.fatal: str | None = None

    # ---------------------------------------------------------------- start and stop
    def on_mount(self) -> None:
        if self.store is None:
            try:
                self.store = open_store(self._store_url)
            except SchemaTooNewError as exc:
                self._fatal(
                    "This store was written by a newer workbench",
                    str(exc),
                    "Upgrade workbench (pip install -U workbench) and run it again. Nothing was changed.",
                )
                return
            except WorkbenchError as exc:
                self._fatal(
                    "Cannot open the store",
                    str(exc),
                    "Check --store / WORKBENCH_URL, that the database is running and reachable, "
                    "and that you may write to it.",
                )
                return
            except Exception as exc:
                self._fatal("Cannot open the store", describe_error(exc), "")
                return
        self.sub_title = self.store.location.display
        self.desk = DecisionDesk(self.store, self.actor)
        self.queue_screen = QueueScreen()
        self.push_screen(self.queue_screen)
        # Everything loaded so far (modules, SQLAlchemy, Textual) lives as long as the app: keep it out of
        # the collector's full passes, which otherwise stall a keypress for ~80 ms every few seconds.
        gc.freeze()
        # Rendering makes many short-lived objects: collect young ones less often (a full pass is rarer still).
        gc.set_threshold(20_000, 50, 100)
        self.set_interval(_RETRY_SECONDS, self._retry_pending)

    def _fatal(self, title: str, message: str, advice: str) -> None:
        self.fatal = message
        self.push_screen(ErrorScreen(title, message, advice))

    async def action_quit(self) -> None:
        self._save_unsaved()
        self.exit()

    def _save_unsaved(self) -> None:
        if self.desk is not None and self.desk.pending:
            self.unsaved_path = self.desk.save_unsaved()

    def on_unmount(self) -> None:
        self._save_unsaved()
        if self._owns_store and self.store is not None:
            self.store.close()

    def _retry_pending(self) -> None:
        if self.desk is not None and self.desk.pending and self.desk.flush() is None:
            self.notify("Saved the decisions that were waiting for the store.", timeout=4)
            if self.queue_screen is not None:
                self.queue_screen._render_status()

    # ---------------------------------------------------------------- shared services for the screens
    def load_facets(self) -> None:
        if self._facets_task is None or self._facets_task.done():
            self._facets_task = asyncio.ensure_future(self.load_facets_now())

    async def wait_for_facets(self) -> Facets | None:
        if self.facets is None:
            self.load_facets()
        if self._facets_task is not None and not self._facets_task.done():
            await asyncio.shield(self._facets_task)
        return self.facets

    async def load_facets_now(self) -> None:
        """Read the filter values (distinct statuses, signals, prompt versions, models) off the UI thread."""
        store = self.store

        def run() -> Facets:
            with store.read() as conn:
                return queue_facets(conn)

        try:
            self.facets = await asyncio.to_thread(run)
        except Exception as exc:
            self.report_error(f"could not read filter values: {describe_error(exc)}")

    def report_error(self, message: str) -> None:
        self.notify(message, title="Problem", severity="error", timeout=10)

    def report_missing(self, ids: list[str]) -> None:
        if ids:
            shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
            self.notify(
                f"Candidate {shown} no longer exists in the store (deleted or rebuilt); nothing was recorded for it.",
                title="Candidate gone",
                severity="error",
                timeout=10,
            )

    def report(self, action: str, outcome: Outcome, ids: list[str]) -> None:
        """Tell the user what happened to a decision (silent when one row simply changed status)."""
        if outcome.error:
            waiting = len(self.desk.pending) if self.desk else 0
            self.notify(
                f"{action} not saved yet: {outcome.error}. It is kept and retried every "
                f"{_RETRY_SECONDS:g}s ({waiting} waiting); if the app exits first it goes to a file.",
                title="Store unavailable",
                severity="error",
                timeout=15,
            )
        self.report_missing(outcome.missing)
        if len(outcome.recorded) > 1:
            self.notify(f"{action}: {len(outcome.recorded)} candidates (u undoes all of them)", timeout=3)

    def open_detail(self, candidate_id: str) -> None:
        """One detail screen, installed once and re-filled: composing a screen per candidate is slow."""
        if self.detail_screen is None:
            self.detail_screen = DetailScreen(candidate_id)
            self.install_screen(self.detail_screen, name="detail")
        else:
            self.detail_screen.show(candidate_id)
        self.push_screen("detail")

    # ---------------------------------------------------------------- app-wide actions
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_overview(self) -> None:
        if self.store is not None and not isinstance(self.screen, OverviewScreen):
            self.push_screen(OverviewScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        queue = self.queue_screen
        if queue is None:
            return
        yield SystemCommand(
            "Overview", "Per prompt version and model version, with regression alerts", self.action_overview
        )
        yield SystemCommand("Keys", "Show every key binding", self.action_help)
        yield SystemCommand(
            "Filter the queue", "Status, signal kind, prompt version, model version", queue.action_filter
        )
        yield SystemCommand("Clear filters", "Back to open candidates, no search", queue.action_clear_filters)
        for status in (*STATUSES, None):
            yield SystemCommand(
                f"Show {status or 'all'} candidates", "Queue status filter", partial(queue.set_status, status)
            )
        yield SystemCommand(
            "Undo last decision", "Records an undo decision restoring the previous state", queue.action_undo
        )
        yield SystemCommand("Reload the queue", "Re-read page one from the store", queue.action_reload)


def run_triage(store: Store | str | os.PathLike[str] | None = None, *, actor: str | None = None) -> None:
    """Run the app on a Store, or on a store URL/path (None: WORKBENCH_URL or the project's .workbench/).

    Pass the URL rather than an opened Store when you can: then an unreachable store or a too-new
    schema is shown inside the app instead of failing before it starts.
    """
    if isinstance(store, Store):
        app = TriageApp(store, actor=actor)
    else:
        app = TriageApp(store_url=None if store is None else os.fspath(store), actor=actor)
    app.run()
    if app.unsaved_path is not None:
        print(
            f"workbench: the store was unavailable; unsaved decisions were written to {app.unsaved_path}",
            file=sys.stderr,
        )
    if app.fatal:
        print(f"error: {app.fatal}", file=sys.stderr)
        sys.exit(5)
