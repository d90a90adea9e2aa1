"""The triage app's `/` search on the indexed store search (issue 13 item 9): typing, waiting, counting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from workbench.store import Store
from workbench.tui import TriageApp
from workbench.tui.widgets import QueueList

from .tui_sample import fixed_now, sample_store, settle

SIZE = (140, 40)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    st = sample_store(tmp_path)
    yield st
    st.close()


def rows(app: TriageApp) -> list[str]:
    return [r.id for r in app.queue_screen.query_one(QueueList).rows]  # type: ignore[union-attr]


def status(app: TriageApp) -> str:
    return str(app.queue_screen.query_one("#queue-status", Static).render())  # type: ignore[union-attr]


async def test_typing_narrows_at_each_key_and_punctuation_alone_waits(store: Store) -> None:
    app = TriageApp(store, actor="tester", now=fixed_now)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        everything = rows(app)
        generation = app.queue_screen.generation  # type: ignore[union-attr]
        await pilot.press("slash", "#")
        await settle(pilot)
        assert isinstance(app.focused, Input)
        assert rows(app) == everything  # nothing to search yet: the list stays, no query was made
        assert app.queue_screen.generation == generation  # type: ignore[union-attr]
        assert "type a letter or digit" in status(app)
        await pilot.press("backspace", *"acc")
        await settle(pilot)
        assert set(rows(app)) == {"cand-05", "cand-07"}  # "account" in two questions
        assert "type a letter" not in status(app) and "search “acc”" in status(app)
        await pilot.press("backspace")  # two letters: words starting with "ac"
        await settle(pilot)
        assert {"cand-05", "cand-07"} <= set(rows(app)) <= set(everything)
        await pilot.press(*"countx")
        await settle(pilot)
        assert rows(app) == []
        assert "No candidates match" in str(app.queue_screen.query_one("#queue-preview", Static).render())  # type: ignore[union-attr]


async def test_the_count_of_a_search_arrives_after_typing_stops(store: Store) -> None:
    app = TriageApp(store, actor="tester", now=fixed_now)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"acc")
        await settle(pilot)
        await pilot.pause(0.6)  # SEARCH_COUNT_DELAY
        await settle(pilot)
        assert status(app).startswith("2 open")
