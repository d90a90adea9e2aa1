"""Issue 16 item 7: after ``workbench purge --user U`` returns, no byte of U's text is left in the store's files.

The scenario has U's data everywhere it can be at once: ingested rows (SQLite pages and WAL), feedback
and candidates built on it, a quarantined (corrupt) record of U's from a killed app, and records in the
open spool segment of an app that is still running when the purge runs. Every file under the store's
directory is then scanned for U's markers, ``strings``-style (raw bytes), while that app still runs; V's
data must all still be there. On PostgreSQL the spool is scanned the same way, the rows are checked and
the VACUUM of the touched tables is seen in ``pg_stat_user_tables``.

Before this fix the same scan found U's text in the WAL, the live segment, the quarantine and the
database's free pages (issue: "48 copies in the SQLite WAL and all raw records in the live spool
segment").
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from workbench.capture.spool import list_segments
from workbench.feedback.explicit import FeedbackAPI
from workbench.store import open_store
from workbench.store.schema import candidates, feedback, traces

from ..conftest import run_cli
from .conftest import app_env

APP = r"""
import json, sys
import httpx
import workbench
from tests.openai_fakes import FakeOpenAI, chat_body

url, marks = sys.argv[1], json.loads(sys.argv[2])
wb = workbench.open(url, ingest="off")
fake = FakeOpenAI()
client = wb.wrap(fake.client())
made = {}
for line in sys.stdin:
    command, *rest = line.split()
    if command == "call":
        user, count = rest[0], int(rest[1])
        for _ in range(count):
            i = made[user] = made.get(user, 0) + 1
            mark = marks[user]
            fake.push(lambda request, a=f"The answer for {mark}-answer-{i} is in the manual.":
                      httpx.Response(200, json=chat_body(a)))
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"My question {mark}-question-{i}, please help"}],
                workbench={"user_id": user, "session_id": f"s-{user}"})
        print(json.dumps({"called": user, "made": made[user]}), flush=True)
    elif command == "close":
        wb.close()
        print(json.dumps({"closed": True}), flush=True)
        break
"""


class App:
    """A capture app in its own process, driven line by line (it stays alive between commands)."""

    def __init__(self, url: str, marks: dict[str, str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", APP, url, json.dumps(marks)],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def send(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply, self.proc.stderr.read() if self.proc.stderr else "app died"
        return json.loads(reply)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("close")
            self.proc.wait(timeout=60)


def scan(root: Path, needles: list[bytes]) -> dict[str, int]:
    """``strings``-style: every regular file under ``root``, raw bytes, count of each needle's copies."""
    found: dict[str, int] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        copies = sum(data.count(needle) for needle in needles)
        if copies:
            found[str(path.relative_to(root))] = copies
    return found


def corrupt_one_record(segment: Path, needle: bytes) -> None:
    """Flip one byte inside the record holding ``needle`` (its checksum then fails: quarantined)."""
    data = bytearray(segment.read_bytes())
    at = data.find(needle)
    assert at > 0, "record to corrupt not found"
    data[at + 3] ^= 0x20
    segment.write_bytes(bytes(data))


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    proj = tmp_path / "proj"
    (proj / ".workbench").mkdir(parents=True)
    yield proj


def run_scenario(url: str, proj: Path, home: Path, env: dict[str, str]) -> dict[str, Any]:
    marks = {"user-u": f"UUMARK{uuid.uuid4().hex[:10]}", "user-v": f"VVMARK{uuid.uuid4().hex[:10]}"}
    u_needles = [marks["user-u"].encode(), b'"user-u"']
    app_environment = app_env(**env)
    cli_env = {**env}

    # 1. An app that is killed: its segment has U's and V's records; one of U's records gets corrupted.
    killed = App(url, marks, proj, app_environment)
    killed.send("call user-u 3")
    killed.send("call user-v 3")
    killed.kill()
    (segment,) = list_segments(home / "spool")
    corrupt_one_record(segment, f"{marks['user-u']}-question-2".encode())

    # 2. An app that keeps running through the purge (ingest off: its records wait in its open segment).
    live = App(url, marks, proj, app_environment)
    live.send("call user-u 4")
    live.send("call user-v 4")
    ingested = run_cli("--store", url, "ingest", cwd=proj, env=cli_env)
    assert ingested.returncode == 0, ingested.stderr
    assert "quarantined 1" in ingested.stdout + ingested.stderr  # U's corrupt record moved aside

    # 3. Feedback and candidates on U's and V's traces, then more calls that only the purge will ingest.
    store = open_store(url)
    try:
        api = FeedbackAPI(store)
        with store.read() as conn:
            rows = conn.execute(select(traces.c.id, traces.c.user_id)).all()
        for trace_id, user in rows:
            api.thumbs(trace_id, up=False, user_id=user)
            api.correction(trace_id, f"Correct answer from {marks[user]}-correction", user_id=user)
    finally:
        store.close()
    refreshed = run_cli("--store", url, "candidates", "refresh", cwd=proj, env=cli_env)
    assert refreshed.returncode == 0, refreshed.stderr
    if url.startswith("sqlite"):  # U's rows into the main database file too (then free pages matter)
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    live.send("call user-u 2")
    live.send("call user-v 1")
    before = scan(home, u_needles)
    assert any(name.startswith("spool/quarantine") for name in before) and before, before  # the test can fail

    # 4. The purge, while the live app still runs; then scan everything.
    purged = run_cli("--store", url, "purge", "--user", "user-u", "--yes", "--json", cwd=proj, env=cli_env)
    assert purged.returncode == 0, purged.stderr
    report = json.loads(purged.stdout)
    after = scan(home, u_needles)
    live_segments = [p.name for p in list_segments(home / "spool") if p.name.endswith(".open")]

    # 5. V's data is untouched, also after the live app closes (its final ingest brings nothing of U back).
    live.send("call user-v 1")
    live.close()
    after_close = scan(home, u_needles)
    store = open_store(url)
    try:
        with store.read() as conn:
            users = [row[0] for row in conn.execute(select(traces.c.user_id))]
            v_texts = conn.execute(select(feedback.c.text).where(feedback.c.user_id == "user-v")).all()
            cands = conn.execute(select(candidates.c.input)).all()
    finally:
        store.close()
    return {
        "before": before,
        "after": after,
        "after_close": after_close,
        "report": report,
        "users": users,
        "v_feedback": v_texts,
        "candidates": cands,
        "live_segments": live_segments,
        "marks": marks,
    }


def test_purge_leaves_no_byte_of_the_users_text_on_sqlite(project: Path) -> None:
    home = project / ".workbench"
    url = f"sqlite:///{home / 'workbench.db'}"
    out = run_scenario(url, project, home, {})
    print(
        f"\nU's marker copies before purge: {sum(out['before'].values())} in {len(out['before'])} files "
        f"{out['before']}; after: {sum(out['after'].values())}"
    )
    assert out["live_segments"], "the live app's open segment should still exist during the scan"
    assert out["after"] == {}, out["after"]
    assert out["after_close"] == {}, out["after_close"]
    report = out["report"]
    assert report["traces"] == 3 - 1 + 4 + 2 and report["complete"] is True
    (spool_line,) = [step for step in report["erased"] if step.startswith("spool:")]
    assert "2 quarantined files with the user's records deleted" in spool_line, spool_line  # the .bad and .why
    assert any("VACUUM" in step for step in report["erased"])
    assert any("WAL checkpointed and truncated" in step for step in report["erased"])
    assert sorted(out["users"]) == ["user-v"] * (3 + 4 + 1 + 1)  # every V call kept, none of U's
    assert len(out["v_feedback"]) == 2 * (3 + 4)  # V's thumbs and corrections on the traces that existed then
    assert out["candidates"] and all(out["marks"]["user-u"] not in json.dumps(c[0]) for c in out["candidates"])


def test_purge_reaches_the_spool_and_vacuums_on_postgres(project: Path, pg_url: str) -> None:
    home = project / ".workbench"
    env = {"WORKBENCH_HOME": str(home)}
    store = open_store(pg_url)
    store.close()
    out = run_scenario(pg_url, project, home, env)
    print(
        f"\nU's marker copies before purge (spool): {sum(out['before'].values())}; after: {sum(out['after'].values())}"
    )
    assert out["after"] == {} and out["after_close"] == {}, (out["after"], out["after_close"])
    report = out["report"]
    assert report["traces"] == 3 - 1 + 4 + 2 and report["complete"] is True
    assert {s for s in report["erased"] if s.startswith("VACUUM")} == {
        "VACUUM traces",
        "VACUUM feedback",
        "VACUUM judge_scores",
        "VACUUM candidates",
        "VACUUM decisions",
    }
    assert sorted(out["users"]) == ["user-v"] * (3 + 4 + 1 + 1)
    store = open_store(pg_url)
    try:
        deadline = time.monotonic() + 10
        while True:  # the statistics reach other sessions shortly after the VACUUM ends
            with store.read() as conn:
                vacuumed = dict(
                    conn.execute(
                        text(
                            "SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                            "AND relname IN ('traces', 'feedback', 'judge_scores', 'candidates', 'decisions')"
                        )
                    ).all()
                )
            done = len(vacuumed) == 5 and all(count >= 1 for count in vacuumed.values())
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(vacuumed) == 5 and all(count >= 1 for count in vacuumed.values()), vacuumed
        with store.read() as conn:
            dead = conn.execute(text("SELECT count(*) FROM traces WHERE user_id = 'user-u'")).scalar_one()
        assert dead == 0
    finally:
        store.close()
