"""`purge_user` / `workbench purge --user`: exactly one user's data leaves the store, candidates follow.

Real SQLite files and PostgreSQL (WORKBENCH_TEST_PG). Every test compares the whole store before and
after, so "other users untouched" is checked row by row, not sampled.
"""

from __future__ import annotations

import os
import pty
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

import workbench
from workbench.candidates.service import refresh_candidates
from workbench.errors import ValidationError
from workbench.ids import new_id
from workbench.models import Feedback, JudgeScore
from workbench.store import Store, open_store
from workbench.store import feedback as feedback_rows
from workbench.store import traces as trace_rows
from workbench.store.candidates import record_decision
from workbench.store.judge import insert_scores
from workbench.store.purge import erase_freed_space, preview_purge, purge_user
from workbench.store.schema import candidates, decisions, feedback, judge_scores, traces

from .conftest import run_cli
from .openai_fakes import FakeOpenAI

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = open_store(store_url)
    yield st
    st.close()


def trace_row(text: str, user: str | None, at: datetime) -> dict[str, Any]:
    return dict(
        id=new_id(),
        created_at=at,
        operation="chat",
        user_id=user,
        prompt_name="support",
        prompt_version=1,
        input=[{"role": "user", "content": text}],
        output_text="an answer",
        stream=False,
        status="ok",
        params={},
        tags=[],
        metadata={},
    )


def fb(
    trace_id: str,
    signal: str,
    user: str | None,
    *,
    value: float | None = None,
    text: str | None = None,
    at: datetime = T0,
) -> Feedback:
    return Feedback(
        id=new_id(),
        trace_id=trace_id,
        kind="explicit",
        signal=signal,
        value=value,  # type: ignore[arg-type]
        text=text,
        source="test",
        user_id=user,
        created_at=at,
    )


def dump(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    """Every row of the tables purge touches, by id."""
    out = {}
    with store.read() as conn:
        for table in (traces, feedback, judge_scores, candidates, decisions):
            out[table.name] = {row.id: dict(row._mapping) for row in conn.execute(select(table))}
    return out


class World:
    """u1 and u2 ask the same question (u1 first: u1's trace represents it); u2 alone asks another;
    u1 alone a third; u1 also votes on u2's lone trace and corrects u2's shared-cluster trace elsewhere."""

    def __init__(self, store: Store) -> None:
        self.shared_u1 = trace_row("How do I reset my password?", "u1", T0)
        self.shared_u2 = trace_row("how can I reset my password", "u2", T0 + timedelta(minutes=5))
        self.lone_u2 = trace_row("Where is my invoice for March?", "u2", T0)
        self.lone_u1 = trace_row("Cancel my plan, I am carol@example.com", "u1", T0)
        self.later_u2 = trace_row("Why is the export button grey?", "u2", T0 + timedelta(minutes=10))
        self.later_u3 = trace_row("why is the export button grey??", "u3", T0 + timedelta(minutes=20))
        rows = [self.shared_u1, self.shared_u2, self.lone_u2, self.lone_u1, self.later_u2, self.later_u3]
        self.u1_vote_on_u2 = fb(self.lone_u2["id"], "thumbs", "u1", value=0.0)
        self.feedback = [
            fb(self.shared_u1["id"], "thumbs", "u1", value=0.0),
            fb(self.shared_u2["id"], "thumbs", "u2", value=0.0),
            fb(self.lone_u2["id"], "thumbs", "u2", value=0.0),
            self.u1_vote_on_u2,
            fb(self.lone_u1["id"], "correction", "u1", text="Plans are cancelled under Billing."),
            fb(self.later_u2["id"], "thumbs", "u2", value=0.0),
            fb(self.later_u3["id"], "thumbs", "u3", value=0.0),
            fb(self.later_u3["id"], "comment", "u1", text="u1 thinks this is wrong"),  # u1 on u3's trace
        ]
        with store.write() as conn:
            trace_rows.insert_traces(conn, rows)
            feedback_rows.add_feedback_many(conn, self.feedback)
            insert_scores(
                conn,
                [
                    JudgeScore(
                        id=new_id(),
                        trace_id=self.lone_u1["id"],
                        rubric_id="helpfulness",
                        rubric_version=1,
                        judge_model="j",
                        score=2.0,
                        raw_answer="carol's plan",
                        cache_key="c1",
                        created_at=T0,
                    ),
                    JudgeScore(
                        id=new_id(),
                        trace_id=self.lone_u2["id"],
                        rubric_id="helpfulness",
                        rubric_version=1,
                        judge_model="j",
                        score=3.0,
                        cache_key="c2",
                        created_at=T0,
                    ),
                ],
            )
        refresh_candidates(store, now=NOW)
        with store.read() as conn:
            self.cand = {row.representative_trace_id: row for row in conn.execute(select(candidates))}
        assert len(self.cand) == 4  # shared (u1 first), lone_u2, lone_u1, later (u2 first, u3 member)
        self.u1_traces = {self.shared_u1["id"], self.lone_u1["id"]}
        self.u1_feedback = {f.id for f in self.feedback if f.user_id == "u1"}


def test_purge_removes_exactly_one_users_data(store: Store) -> None:
    world = World(store)
    shared = world.cand[world.shared_u1["id"]].id
    with store.write() as conn:  # triage work on a candidate that will lose its representative
        record_decision(conn, shared, "accept", "alice", None, {"status": "accepted"})
    before = dump(store)
    with store.read() as conn:
        preview = preview_purge(conn, "u1")
    with store.write() as conn:
        counts = purge_user(conn, "u1")
    after = dump(store)

    assert counts == preview
    assert (counts.traces, counts.feedback, counts.judge_scores) == (2, 4, 1)
    assert (counts.candidates_deleted, counts.candidates_updated, counts.decisions) == (2, 2, 1)
    assert set(after["traces"]) == set(before["traces"]) - world.u1_traces
    gone_feedback = {
        i for i, row in before["feedback"].items() if row["trace_id"] in world.u1_traces or row["user_id"] == "u1"
    }
    assert gone_feedback == world.u1_feedback | {f.id for f in world.feedback if f.trace_id in world.u1_traces}
    assert after["feedback"] == {i: row for i, row in before["feedback"].items() if i not in gone_feedback}
    assert after["traces"] == {i: row for i, row in before["traces"].items() if i not in world.u1_traces}
    assert [row["trace_id"] for row in after["judge_scores"].values()] == [world.lone_u2["id"]]
    # Candidates: the shared one showed u1's text -> deleted with its decision; u1's own -> deleted.
    assert shared not in after["candidates"] and not after["decisions"]
    assert world.cand[world.lone_u1["id"]].id not in after["candidates"]
    lone = after["candidates"][world.cand[world.lone_u2["id"]].id]  # lost u1's vote, kept its text
    assert lone["feedback_ids"] == [
        f for f in before["candidates"][lone["id"]]["feedback_ids"] if f != world.u1_vote_on_u2.id
    ]
    assert lone["input"] == before["candidates"][lone["id"]]["input"] and lone["count"] == 1
    later = after["candidates"][world.cand[world.later_u2["id"]].id]
    assert later["member_trace_ids"] == [world.later_u2["id"], world.later_u3["id"]]
    assert not set(later["feedback_ids"]) & world.u1_feedback
    for row in after["candidates"].values():
        assert not set(row["member_trace_ids"]) & world.u1_traces
        assert not set(row["feedback_ids"]) & gone_feedback

    # A refresh rebuilds from what is left: u2's password question now represents its own cluster.
    refresh_candidates(store, now=NOW)
    rebuilt = dump(store)["candidates"]
    reps = {row["representative_trace_id"] for row in rebuilt.values()}
    assert reps == {world.shared_u2["id"], world.lone_u2["id"], world.later_u2["id"]}
    assert all("u1" not in orjson.dumps(row["input"]).decode() for row in rebuilt.values())


def test_candidate_whose_expected_output_is_the_users_correction_goes(store: Store) -> None:
    a = trace_row("What is the VAT rate in Germany?", "u2", T0)
    correction = fb(a["id"], "correction", "u9", text="19 percent, ask me at 0151 2345 6789")
    with store.write() as conn:
        trace_rows.insert_traces(conn, [a])
        feedback_rows.add_feedback_many(conn, [fb(a["id"], "thumbs", "u2", value=0.0), correction])
    refresh_candidates(store, now=NOW)
    with store.write() as conn:
        counts = purge_user(conn, "u9")
    assert (counts.traces, counts.feedback, counts.candidates_deleted) == (0, 1, 1)
    refresh_candidates(store, now=NOW)
    (row,) = dump(store)["candidates"].values()
    assert row["expected_output"] is None and row["primary_signal"] == "thumbs_down"


def test_purge_is_all_or_nothing_and_repeatable(store: Store) -> None:
    World(store)
    before = dump(store)
    with pytest.raises(RuntimeError), store.write() as conn:
        purge_user(conn, "u1")
        raise RuntimeError("crash after the deletes, before commit")
    assert dump(store) == before
    with store.write() as conn:
        purge_user(conn, "u1")
    with store.write() as conn:
        again = purge_user(conn, "u1")
    assert again.nothing and again.as_dict()["traces"] == 0


def test_unknown_user_deletes_nothing_and_empty_user_is_refused(store: Store) -> None:
    World(store)
    before = dump(store)
    with store.write() as conn:
        assert purge_user(conn, "nobody").nothing
    assert dump(store) == before
    with store.write() as conn, pytest.raises(ValidationError, match="user id must be a non-empty string"):
        purge_user(conn, "  ")


# ---------------------------------------------------------------- CLI


def test_cli_refuses_without_yes_when_not_a_terminal(tmp_path: Path, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    World(store)
    before = dump(store)
    result = run_cli("purge", "--user", "u1", cwd=tmp_path, env={"WORKBENCH_URL": sqlite_url}, input="")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "stdin is not a terminal; pass --yes" in lines[0]
    assert dump(store) == before
    store.close()


def test_cli_purges_spooled_records_too(tmp_path: Path, sqlite_url: str) -> None:
    fake = FakeOpenAI()
    wb = workbench.open(sqlite_url, background_ingest=False)
    client = wb.wrap(fake.client())
    for user in ("u1", "u2", "u1"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], workbench={"user_id": user}
        )
    store = open_store(sqlite_url)
    assert dump(store)["traces"] == {}  # captured, but only in the spool so far
    result = run_cli(
        "purge", "--user", "u1", "--yes", "--json", cwd=tmp_path, env={"WORKBENCH_URL": sqlite_url}, input=""
    )
    assert result.returncode == 0, result.stderr
    counts = orjson.loads(result.stdout)
    assert set(counts) == {
        "user_id",
        "traces",
        "feedback",
        "judge_scores",
        "candidates_updated",
        "candidates_deleted",
        "decisions",
        "erased",
        "complete",
    }
    assert counts["complete"] is True and any("VACUUM" in step for step in counts["erased"])
    assert counts["user_id"] == "u1" and counts["traces"] == 2
    assert [row["user_id"] for row in dump(store)["traces"].values()] == ["u2"]
    wb.close()  # the app's own final ingest must not bring the purged records back
    assert [row["user_id"] for row in dump(store)["traces"].values()] == ["u2"]
    nothing = run_cli("purge", "--user", "u1", "--yes", cwd=tmp_path, env={"WORKBENCH_URL": sqlite_url}, input="")
    assert nothing.returncode == 0 and "nothing deleted" in nothing.stdout
    store.close()


@pytest.mark.parametrize(("answer", "code", "left"), [("n", 1, {"u1", "u2", "u3"}), ("y", 0, {"u2", "u3"})])
def test_cli_asks_on_a_terminal(tmp_path: Path, sqlite_url: str, answer: str, code: int, left: set[str]) -> None:
    store = open_store(sqlite_url)
    World(store)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")} | {"WORKBENCH_URL": sqlite_url}
    os.write(leader, f"{answer}\n".encode())
    try:
        result = subprocess.run(
            [sys.executable, "-m", "workbench", "purge", "--user", "u1"],
            cwd=tmp_path,
            env=env,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == code, result.stderr
    assert "purge user 'u1': 2 traces, 4 feedback rows" in result.stdout
    assert {row["user_id"] for row in dump(store)["traces"].values()} == left
    store.close()


def test_erasing_freed_space_reports_a_reader_that_blocks_the_wal(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    World(store)
    with store.write() as conn:
        purge_user(conn, "u1")
    reader = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM traces").fetchone()  # an app's ingester in the middle of a read
        blocked = erase_freed_space(store, checkpoint_wait=0.2)
        assert not blocked.complete and "WAL not truncated" in blocked.steps[-1]
        reader.execute("COMMIT")
    finally:
        reader.close()
    done = erase_freed_space(store, checkpoint_wait=0.2)
    assert done.complete and done.steps[-1] == "WAL checkpointed and truncated"
    assert Path(sqlite_url.removeprefix("sqlite:///") + "-wal").stat().st_size == 0
    store.close()
