"""Snapshots of the triage app's main screens (pytest-textual-snapshot), from a store with fixed ids and times.

Update after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at
the SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Select

from workbench.store import open_store
from workbench.tui import TriageApp

from .tui_sample import fixed_now, sample_store, settle

SIZE = (140, 36)


def _app(tmp_path: Path) -> TriageApp:
    return TriageApp(sample_store(tmp_path), actor="tester", now=fixed_now)


def test_queue(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(_app(tmp_path), terminal_size=SIZE, run_before=settle)


def test_queue_with_selection_and_decisions(snap_compare: Any, tmp_path: Path) -> None:
    async def act(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("a", "r", "s", "space", "space")
        await settle(pilot)

    assert snap_compare(_app(tmp_path), terminal_size=SIZE, run_before=act)


def test_detail(snap_compare: Any, tmp_path: Path) -> None:
    async def open_detail(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("down", "down", "enter")  # the candidate with a user correction
        await settle(pilot)

    assert snap_compare(_app(tmp_path), terminal_size=(140, 60), run_before=open_detail)


def test_overview(snap_compare: Any, tmp_path: Path) -> None:
    async def overview(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)

    assert snap_compare(_app(tmp_path), terminal_size=SIZE, run_before=overview)


def test_filter_dialog(snap_compare: Any, tmp_path: Path) -> None:
    async def dialog(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        pilot.app.screen.query_one("#filter-signal", Select).value = "correction"
        await settle(pilot)

    assert snap_compare(_app(tmp_path), terminal_size=SIZE, run_before=dialog)


def test_empty_store(snap_compare: Any, tmp_path: Path) -> None:
    app = TriageApp(open_store(tmp_path / "empty.db"), actor="tester", now=fixed_now)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
