"""The triage app driven with Pilot against real SQLite stores (no mocks): every flow of issue 6."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, select
from textual.command import CommandPalette
from textual.widgets import Input, Select, Static, TextArea

from workbench.models import Candidate
from workbench.store import Store, open_store
from workbench.store.candidates import get_candidate, list_decisions, upsert_candidates
from workbench.store.schema import candidates, decisions, migrations_table
from workbench.tui import TriageApp, default_actor
from workbench.tui.screens import DetailScreen, ErrorScreen, FilterDialog, HelpScreen, OverviewScreen, TextDialog
from workbench.tui.screens.queue import PAGE, WINDOW, QueueScreen
from workbench.tui.widgets import QueueList
from workbench.tui.widgets.detail_view import DetailView

from .tui_sample import NOW, fixed_now, sample_store, settle

SIZE = (140, 40)


def queue(app: TriageApp) -> QueueList:
    return app.queue_screen.query_one(QueueList)


def line(app: TriageApp, index: int) -> str:
    lst = queue(app)
    return lst.render_line(index - int(lst.scroll_y)).text


def reopen(path: Path) -> Store:
    return open_store(path / "wb.db")


def status_of(path: Path, cid: str) -> Candidate:
    st = reopen(path)
    try:
        with st.read() as conn:
            return get_candidate(conn, cid)
    finally:
        st.close()


def actions(path: Path, cid: str) -> list[tuple[str, str]]:
    st = reopen(path)
    try:
        with st.read() as conn:
            return [(d.action, d.actor) for d in list_decisions(conn, cid)]
    finally:
        st.close()


@pytest.fixture
def store(tmp_path: Path) -> Any:
    st = sample_store(tmp_path)
    yield st
    st.close()


def app_for(store: Store) -> TriageApp:
    return TriageApp(store, actor="tester", now=fixed_now)


# ---------------------------------------------------------------- queue


async def test_queue_lists_candidates_by_priority_with_columns(store: Store) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        lst = queue(app)
        assert [r.id for r in lst.rows] == [f"cand-{n:02d}" for n in range(12)]
        first = line(app, 0)
        for cell in (
            "0.95",
            "thumbs",
            "support-answer@1",
            "gpt-4o-mini-2024-07-18",
            "3h",
            "open",
            "How do I reset my password?",
        ):
            assert cell in first
        assert "12 open" in str(app.queue_screen.query_one("#queue-status", Static).render())


async def test_accept_reject_skip_are_written_at_once(store: Store, tmp_path: Path) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        assert status_of(tmp_path, "cand-00").status == "accepted"  # before the app exits
        await pilot.press("r", "s")
        await settle(pilot)
        assert queue(app).cursor == 3
        assert "accepted" in line(app, 0) and "rejected" in line(app, 1) and "skipped" in line(app, 2)
        assert "9 open" in str(app.queue_screen.query_one("#queue-status", Static).render())
    assert [status_of(tmp_path, f"cand-0{n}").status for n in range(4)] == ["accepted", "rejected", "skipped", "open"]
    assert actions(tmp_path, "cand-00") == [("accept", "tester")]


async def test_bulk_select_accept_and_undo(store: Store, tmp_path: Path) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space", "x", "down", "space")  # rows 0, 1 and 3
        assert queue(app).selected == {"cand-00", "cand-01", "cand-03"}
        assert "3 selected" in str(app.queue_screen.query_one("#queue-status", Static).render())
        await pilot.press("a")
        await settle(pilot)
        assert queue(app).selected == set()
        assert [status_of(tmp_path, f"cand-0{n}").status for n in range(4)] == [
            "accepted",
            "accepted",
            "open",
            "accepted",
        ]
        assert "9 open" in str(app.queue_screen.query_one("#queue-status", Static).render())
        await pilot.press("u")  # one undo reverts the whole bulk action
        await settle(pilot)
        assert [status_of(tmp_path, f"cand-0{n}").status for n in range(4)] == ["open"] * 4
        assert "12 open" in str(app.queue_screen.query_one("#queue-status", Static).render())
        assert "open" in line(app, 3)
        await pilot.press("u")
        await settle(pilot)
    assert actions(tmp_path, "cand-03") == [("accept", "tester"), ("undo", "tester")]


async def test_bulk_reject(store: Store, tmp_path: Path) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "space", "space", "r")
        await settle(pilot)
    assert [status_of(tmp_path, f"cand-0{n}").status for n in range(4)] == ["open", "rejected", "rejected", "open"]


async def test_status_cycle_and_filter_dialog(store: Store, tmp_path: Path) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a", "a")
        await pilot.press("t")  # open -> accepted
        await settle(pilot)
        assert [r.id for r in queue(app).rows] == ["cand-00", "cand-01"]
        await pilot.press("c")
        await settle(pilot)
        assert len(queue(app).rows) == 10
        await pilot.press("f")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, FilterDialog)
        dialog.query_one("#filter-signal", Select).value = "pushback"
        dialog.query_one("#filter-prompt", Select).value = "support-answer@2"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        assert [r.id for r in queue(app).rows] == ["cand-07", "cand-11"]
        assert "signal=pushback" in str(app.queue_screen.query_one("#queue-status", Static).render())
        await pilot.press("f")
        await settle(pilot)
        assert app.screen.query_one("#filter-signal", Select).value == "pushback"  # the dialog shows the filter
        app.screen.query_one("#filter-status", Select).value = "rejected"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert queue(app).rows == []
        assert "No candidates match" in str(app.queue_screen.query_one("#queue-preview", Static).render())


async def test_incremental_search(store: Store) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"acc")
        await settle(pilot)
        assert {r.id for r in queue(app).rows} == {"cand-05", "cand-07"}  # "account" in two questions
        await pilot.press("backspace", "backspace", "backspace", *"EMAIL")
        await settle(pilot)
        assert [r.id for r in queue(app).rows] == ["cand-05"]
        await pilot.press("enter")  # back to the list; keys act again
        assert app.focused is queue(app)
        await pilot.press("escape")
        await settle(pilot)
        assert app.queue_screen.query_one("#search", Input).value == ""
        assert len(queue(app).rows) == 12


async def test_scrolling_pages_in_lazily_and_keeps_a_bounded_window(tmp_path: Path) -> None:
    n = 760  # more than the window, so rows are dropped and re-read
    st = open_store(tmp_path / "big.db")
    items = [
        Candidate(
            id=f"c{i:05d}",
            cluster_key=f"k{i}",
            representative_trace_id=f"t{i}",
            priority=float(i % 50),
            input=[{"role": "user", "content": f"q{i}"}],
            created_at=NOW,
            updated_at=NOW,
        )
        for i in range(n)
    ]
    with st.write() as conn:
        upsert_candidates(conn, items)
    expected = [c.id for c in sorted(items, key=lambda c: (-c.priority, c.id))]
    app = app_for(st)
    async with app.run_test(size=(140, 100)) as pilot:  # a tall terminal: fewer pagedowns to the end
        await settle(pilot)
        lst = queue(app)
        assert len(lst.rows) <= 2 * PAGE < n  # a page, plus the next one as the view reaches its end
        seen = [lst.current.id]
        max_window = 0
        while lst.current.id != expected[-1]:
            await pilot.press("pagedown")
            await settle(pilot)
            seen.append(lst.current.id)
            max_window = max(max_window, len(lst.rows))
        assert max_window <= WINDOW
        positions = [expected.index(cid) for cid in seen]
        assert positions == sorted(positions) and positions[-1] == n - 1
        while lst.current.id != expected[0]:  # and back up: dropped rows are re-read before the window
            await pilot.press("pageup")
            await settle(pilot)
            assert len(lst.rows) <= WINDOW
        assert [r.id for r in lst.rows] == expected[: len(lst.rows)]
    st.close()


async def test_keys_pressed_past_the_loaded_rows_are_not_lost(tmp_path: Path) -> None:
    """Holding `down` past the last loaded row: the moves wait for the next page instead of stopping there."""
    n = 3 * PAGE
    st = open_store(tmp_path / "fast.db")
    items = [
        Candidate(
            id=f"c{i:05d}",
            cluster_key=f"k{i}",
            representative_trace_id=f"t{i}",
            priority=float(n - i),
            input=[{"role": "user", "content": f"q{i}"}],
            created_at=NOW,
            updated_at=NOW,
        )
        for i in range(n)
    ]
    with st.write() as conn:
        upsert_candidates(conn, items)
    app = app_for(st)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot)
        lst = queue(app)
        assert len(lst.rows) == PAGE
        screen = app.queue_screen
        screen._edge_busy = True  # hold the next page back: the keys arrive while it is "still loading"
        lst.cursor = PAGE - 1
        await pilot.press(*["down"] * 3, "up")
        assert lst.cursor == PAGE - 2 and len(lst.rows) == PAGE  # the up applied at once; 3 downs wait
        screen._edge_busy = False
        screen._check_edges()  # the page arrives
        await settle(pilot)
        assert lst.current.id == f"c{PAGE + 1:05d}"  # 99 - 1 + 3
        steps = PAGE // 2
        await pilot.press(*["down"] * steps)
        await settle(pilot)
        assert lst.current.id == f"c{PAGE + 1 + steps:05d}"
    st.close()


# ---------------------------------------------------------------- detail and edits


async def test_detail_shows_everything_about_a_candidate(store: Store) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.candidate_id == "cand-00"

        section = screen.section_text
        painted = screen.query_one(DetailView).text()  # what the view paints, section titles included
        assert "Input messages" in painted and "How do I reset my password?" in painted
        assert "How do I reset my password?" in section("Input") and "Answer politely." in section("Input")
        assert "is done in Settings" in section("Output")
        assert "repeat_ask" in section("Feedback") and "similarity" in section("Feedback")
        assert "helpfulness@1" in section("Judge") and "Score: 2. Vague." in section("Judge")
        assert "t1m000" in section("Traces") and "t1m012" in section("Traces")
        await pilot.press("right_square_bracket", "right_square_bracket")
        await settle(pilot)
        assert screen.candidate_id == "cand-02"
        assert "Refunds for annual plans are pro-rated" in section("Correction")  # the user's correction
        await pilot.press("a")  # accept moves on to the next candidate
        await settle(pilot)
        assert screen.candidate_id == "cand-03"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        assert queue(app).current.id == "cand-03"
        assert "accepted" in line(app, 2)


async def test_edit_expected_output_prefilled_with_the_correction(store: Store, tmp_path: Path) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "e")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, TextDialog)
        area = dialog.query_one(TextArea)
        assert area.text == "Refunds for annual plans are pro-rated within 30 days."
        await pilot.press(*" Ask support.")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        await pilot.press("e")  # now prefilled with what was saved
        await settle(pilot)
        assert app.screen.query_one(TextArea).text.endswith("30 days. Ask support.")
        await pilot.press("escape")  # cancel: no decision
        await settle(pilot)
    got = status_of(tmp_path, "cand-02")
    assert got.expected_output == "Refunds for annual plans are pro-rated within 30 days. Ask support."
    assert got.status == "open"
    assert actions(tmp_path, "cand-02") == [("edit", "tester")]


async def test_labels_and_notes(store: Store, tmp_path: Path) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        await pilot.press(*"bug, ux,bug", "enter")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press(*"twice", "ctrl+s")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        text = app.screen.section_text("Candidate")
        assert "bug, ux" in text and "twice" in text
    got = status_of(tmp_path, "cand-00")
    assert (got.labels, got.notes) == (["bug", "ux"], "twice")


async def test_decision_from_detail_is_undone_from_detail(store: Store, tmp_path: Path) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter", "r")
        await settle(pilot)
        assert app.screen.candidate_id == "cand-01"
        await pilot.press("u")
        await settle(pilot)
        assert app.screen.candidate_id == "cand-00"
    assert status_of(tmp_path, "cand-00").status == "open"
    assert [a for a, _ in actions(tmp_path, "cand-00")] == ["reject", "undo"]


# ---------------------------------------------------------------- other screens


async def test_overview_shows_versions_and_alerts_the_worse_one(store: Store) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        table = screen.query_one("#overview-table")
        assert table.row_count == 3
        alerts = screen.query_one("#overview-alerts", Static)
        assert alerts.has_class("alert")
        message = str(alerts.render())
        assert "support-answer@2 · gpt-4o-mini-2024-07-18: thumbs-up 30%" in message
        assert "for support-answer@1" in message
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(3)]
        flagged = [r for r in rows if r[0] == "▼"]
        assert [(r[1], r[2]) for r in flagged] == [("support-answer@2", "gpt-4o-mini-2024-07-18")]
        await pilot.press("escape")
        assert isinstance(app.screen, QueueScreen)


async def test_overview_shows_alerts_logged_by_watch(store: Store) -> None:
    """What `workbench watch` logged shows on the overview, with its message and example traces."""
    from workbench.models import Alert
    from workbench.store.attribution import insert_alerts

    logged = Alert(
        id="alert-1",
        configuration={"label": "support-answer@2"},
        metric="thumbs_up_rate",
        window="1h",
        baseline="7d",
        created_at=NOW,
        evidence={
            "message": "thumbs-up 31% in the last hour vs 70% before",
            "example_trace_ids": ["trace-a", "trace-b", "trace-c", "trace-d"],
        },
    )
    with store.write() as conn:
        insert_alerts(conn, [logged])
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        box = app.screen.query_one("#overview-alerts", Static)
        message = str(box.render())
        assert box.has_class("alert")
        assert "thumbs_up_rate for support-answer@2: thumbs-up 31% in the last hour vs 70% before" in message
        assert "trace-a, trace-b, trace-c" in message and "trace-d" not in message


async def test_overview_shows_the_judge_calibrated_on_user_ratings(tmp_path: Path) -> None:
    """PPI per prompt version: judge scores on every trace, corrected by the users' ratings on a subset."""
    import numpy as np

    from workbench.judge.calibration import ppi_mean
    from workbench.store.schema import feedback, judge_scores
    from workbench.store.traces import insert_traces

    from .tui_sample import _fb, _trace

    rng = np.random.default_rng(7)
    judge = rng.integers(1, 6, 80).astype(float)
    human = np.clip(judge - 1 + rng.integers(-1, 2, 80), 1, 5)  # the judge is a point too kind
    traces, scores, ratings = [], [], []
    for i in range(80):
        tid = f"tj{i:03d}"
        traces.append(_trace(tid, NOW, 1, "gpt-4o-mini-2024-07-18", f"q{i}", "a", f"u{i}"))
        scores.append(
            {
                "id": f"js{i:03d}",
                "trace_id": tid,
                "rubric_id": "helpfulness",
                "rubric_version": 1,
                "judge_model": "judge",
                "score": judge[i],
                "parse_status": "ok",
                "cache_key": f"k{i}",
                "created_at": NOW,
            }
        )
        if i % 3 == 0:
            ratings.append(_fb(f"r{i:03d}", tid, "explicit", "rating", NOW, value=human[i], user=f"u{i}"))
    st = open_store(tmp_path / "judged.db")
    with st.write() as conn:
        insert_traces(conn, traces)
        conn.execute(judge_scores.insert(), scores)
        conn.execute(feedback.insert(), ratings)
    rated = np.arange(80) % 3 == 0
    oracle = ppi_mean(human[rated], judge[rated], judge[~rated], lam=1.0).ppi
    app = app_for(st)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        text = str(app.screen.query_one("#overview-calibrated", Static).render())
    st.close()
    assert f"support-answer@1 helpfulness {oracle.estimate:.2f} [{oracle.ci_low:.2f}–{oracle.ci_high:.2f}]" in text
    assert "n=80, rated 27" in text and oracle.estimate < judge.mean() - 0.5  # corrected toward the users


async def test_help_and_command_palette(store: Store) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"rejec")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        assert app.queue_screen.flt.status == "rejected"


async def test_empty_store_says_how_to_get_data_in(tmp_path: Path) -> None:
    st = open_store(tmp_path / "empty.db")
    app = app_for(st)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        empty = app.queue_screen.query_one("#queue-empty", Static)
        assert empty.display and not queue(app).display
        text = str(empty.render())
        assert "client = wb.wrap(OpenAI())" in text and "workbench demo" in text
        assert app.focused is None  # so the screen's keys work (no search box swallowing them)
        await pilot.press("a", "enter", "u")  # nothing to act on: no error
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
    st.close()


# ---------------------------------------------------------------- bad input and failures


async def test_candidate_deleted_while_open(store: Store, tmp_path: Path) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")  # one decision made before the deletion
        await pilot.press("enter")
        await settle(pilot)
        with store.write() as conn:
            conn.execute(candidates.delete().where(candidates.c.id == "cand-01"))
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.gone
        banner = screen.query_one("#detail-banner", Static)
        assert banner.display and "no longer exists" in str(banner.render())
        assert any("no longer exists" in str(n.message) for n in app._notifications)
        await pilot.press("escape")
        await settle(pilot)
        assert "gone" in line(app, 1)
    assert status_of(tmp_path, "cand-00").status == "accepted"  # the earlier decision is kept
    st = reopen(tmp_path)
    with st.read() as conn:
        assert [r.candidate_id for r in conn.execute(select(decisions.c.candidate_id))] == ["cand-00"]
    st.close()


async def test_store_locked_decision_waits_and_is_saved_later(tmp_path: Path) -> None:
    sample_store(tmp_path).close()
    base = reopen(tmp_path)
    # the same store with a short lock wait, so the test does not sit out the default 10 s busy timeout
    short = Store(base.location, create_engine(base.location.url, connect_args={"timeout": 0.2}))
    blocker = sqlite3.connect(tmp_path / "wb.db", isolation_level=None)
    app = app_for(short)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        blocker.execute("BEGIN IMMEDIATE")
        await pilot.press("a")
        await settle(pilot)
        assert len(app.desk.pending) == 1
        assert any("not saved yet" in str(n.message) for n in app._notifications)
        assert "not saved yet" in str(app.queue_screen.query_one("#queue-status", Static).render())
        assert blocker.execute("SELECT status FROM candidates WHERE id = 'cand-00'").fetchone() == ("open",)
        await pilot.press("u")  # undo refuses while something is unsaved, says why
        await settle(pilot)
        blocker.execute("ROLLBACK")
        app._retry_pending()
        assert app.desk.pending == []
    assert status_of(tmp_path, "cand-00").status == "accepted"
    blocker.close()
    short.close()
    base.close()


async def test_unsaved_decisions_go_to_a_file_at_exit(tmp_path: Path) -> None:
    sample_store(tmp_path).close()
    base = reopen(tmp_path)
    short = Store(base.location, create_engine(base.location.url, connect_args={"timeout": 0.2}))
    blocker = sqlite3.connect(tmp_path / "wb.db", isolation_level=None)
    app = app_for(short)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        blocker.execute("BEGIN IMMEDIATE")
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
    assert app.unsaved_path is not None
    saved = [orjson.loads(x) for x in app.unsaved_path.read_bytes().splitlines()]
    assert [(s["candidate_id"], s["action"], s["after"], s["actor"]) for s in saved] == [
        ("cand-00", "reject", {"status": "rejected"}, "tester")
    ]
    blocker.execute("ROLLBACK")
    blocker.close()
    short.close()
    base.close()


async def test_unreachable_store_is_a_clear_screen(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    app = TriageApp(store_url=str(tmp_path / "afile" / "sub" / "wb.db"), actor="tester")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ErrorScreen)
        message = str(app.screen.query_one("#error-message", Static).render())
        assert "cannot create store" in message and "afile" in message
        await pilot.press("q")
    assert app.fatal


async def test_schema_too_new_is_a_clear_screen(tmp_path: Path) -> None:
    st = open_store(tmp_path / "wb.db")
    with st.write() as conn:
        conn.execute(migrations_table.insert().values(name="9999_from_the_future", applied_at=NOW))
    st.close()
    app = TriageApp(store_url=str(tmp_path / "wb.db"), actor="tester")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "newer workbench" in str(app.screen.query_one("#error-message", Static).render())
        assert "9999_from_the_future" in str(app.screen.query_one("#error-message", Static).render())


async def test_quitting_while_queries_run_is_clean(store: Store) -> None:
    app = app_for(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")  # the first page and the count are still loading
    assert app.return_code in (0, None)


def test_actor_defaults_to_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_ACTOR", raising=False)
    monkeypatch.setenv("USER", "ana")
    assert default_actor() == "ana"
    assert TriageApp(store_url="unused").actor == "ana"
    assert TriageApp(store_url="unused", actor="bob").actor == "bob"
