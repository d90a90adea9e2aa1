"""The CLI does what it says (issue 13 item 7): no triage app without a terminal, a mistyped store is
exit 4 and creates nothing (`workbench init` creates stores), `prompts rollback NAME@V` as the README
writes it, and `traces` says what is still waiting in the spool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import workbench
from workbench.store import traces as trace_rows

from .conftest import PG_ENV, run_cli
from .openai_fakes import FakeOpenAI
from .test_judge_runner import FakeServer

REPO = Path(__file__).resolve().parents[1]


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# ---------------------------------------------------------------- no terminal


@pytest.mark.parametrize("args", [(), ("triage",)], ids=["bare", "triage"])
def test_triage_without_a_terminal_exits_2_instead_of_starting_the_app(tmp_path, args):
    assert run_cli("init", cwd=tmp_path).returncode == 0
    # stdin from /dev/null and stdout a pipe, as under CI or cron. Before the fix the full-screen app
    # started here and never returned (the timeout turns that into a failure).
    result = subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")},
    )
    one_line_error(result, 2, "needs a terminal", "workbench candidates --json")
    assert result.stdout == ""


# ---------------------------------------------------------------- a store that is not there


@pytest.mark.parametrize("how", ["--store DIR", "--store sqlite:///FILE", "WORKBENCH_URL"])
@pytest.mark.parametrize("command", [("traces",), ("candidates", "--json"), ("mine",), ("golden", "build", "x"), ()])
def test_mistyped_store_exits_4_and_creates_nothing(tmp_path, how, command):
    (tmp_path / "project" / ".workbench").mkdir(parents=True)  # the real project, one letter away
    before = tree(tmp_path)
    target = {
        "--store DIR": str(tmp_path / "projcet"),
        "--store sqlite:///FILE": f"sqlite:///{tmp_path}/wb.db",
        "WORKBENCH_URL": str(tmp_path / "projcet"),
    }[how]
    if how == "WORKBENCH_URL":
        result = run_cli(*command, cwd=tmp_path, env={"WORKBENCH_URL": target})
    else:
        result = run_cli("--store", target, *command, cwd=tmp_path)
    one_line_error(result, 4, "no workbench store at", "workbench --store", " init`")
    assert tree(tmp_path) == before  # not even a directory


def _pg_base() -> str:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return base


def test_mistyped_postgres_database_exits_4(tmp_path):
    base = _pg_base()
    typo = base.rsplit("/", 1)[0] + "/wb_no_such_database_x"
    result = run_cli("--store", typo, "traces", cwd=tmp_path)
    one_line_error(result, 4, 'database "wb_no_such_database_x" does not exist')


def test_postgres_database_without_workbench_tables_exits_4_and_stays_empty(tmp_path, pg_url):
    import sqlalchemy as sa

    result = run_cli("--store", pg_url, "traces", cwd=tmp_path)
    one_line_error(result, 4, "no workbench tables", "init`")
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
            assert sa.inspect(conn).get_table_names(schema=schema) == []
    finally:
        engine.dispose()
    # `workbench init` is how a new store is made; then the same command works.
    created = run_cli("--store", pg_url, "init", "--json", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["created"] is True
    assert json.loads(run_cli("--store", pg_url, "traces", "--json", cwd=tmp_path).stdout) == []


def test_init_creates_a_store_that_every_command_then_finds(tmp_path):
    first = run_cli("init", cwd=tmp_path)
    assert first.returncode == 0 and "created store" in first.stdout, first.stderr
    assert (tmp_path / ".workbench" / "workbench.db").is_file()
    again = run_cli("init", "--json", cwd=tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["created"] is False
    (tmp_path / "src").mkdir()
    assert json.loads(run_cli("traces", "--json", cwd=tmp_path / "src").stdout) == []  # found from below, like git
    other = run_cli("init", "elsewhere/support", cwd=tmp_path)
    assert other.returncode == 0 and (tmp_path / "elsewhere" / "support" / ".workbench" / "workbench.db").is_file()
    url = f"sqlite:///{tmp_path / 'file.db'}"
    assert run_cli("--store", url, "init", cwd=tmp_path).returncode == 0
    assert run_cli("--store", url, "candidates", "--json", cwd=tmp_path).stdout.strip() == "[]"


def test_a_project_folder_without_its_database_yet_still_opens(tmp_path):
    """`.workbench/` is the project (the app may have only spooled so far): its database is made on open."""
    (tmp_path / ".workbench").mkdir()
    result = run_cli("traces", "--json", cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stderr


# ---------------------------------------------------------------- prompts rollback NAME@V


def test_prompts_rollback_takes_name_at_version_as_the_readme_writes_it(tmp_path):
    wb = workbench.open(tmp_path)
    for text in ("v1: {q}", "v2: {q}", "v3: {q}"):
        wb.prompts.register("support-answer", text)
    wb.close()
    promoted = run_cli("prompts", "promote", "support-answer@3", "--why", "new wording", cwd=tmp_path)
    assert promoted.returncode == 0, promoted.stderr
    back = run_cli("prompts", "rollback", "support-answer@1", "--why", "v2 and v3 worse", "--json", cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    event = json.loads(back.stdout)
    assert (event["action"], event["prompt_version"]) == ("rollback", 1)
    wb = workbench.open(tmp_path)
    try:
        assert wb.prompts.get("support-answer").version == 1
    finally:
        wb.close()
    clash = run_cli("prompts", "rollback", "support-answer@2", "--to", "3", "--why", "x", cwd=tmp_path)
    one_line_error(clash, 2, "support-answer@2 and --to 3")
    plain = run_cli(
        "prompts", "rollback", "support-answer", "--to", "2", "--why", "the old way still works", "--json", cwd=tmp_path
    )
    assert plain.returncode == 0 and json.loads(plain.stdout)["prompt_version"] == 2, plain.stderr


# ---------------------------------------------------------------- traces and the spool


def test_traces_says_what_is_still_in_the_spool(tmp_path):
    assert run_cli("init", cwd=tmp_path).returncode == 0
    app = subprocess.Popen(
        [sys.executable, "-m", "tests.capture_app", str(tmp_path), "7", "--hang"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "done 7"
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=30)
    waiting = run_cli("traces", "--json", cwd=tmp_path)
    assert waiting.returncode == 0, waiting.stderr
    assert json.loads(waiting.stdout) == []  # --json stays one document; the note is on stderr
    assert "not ingested yet" in waiting.stderr and "workbench ingest" in waiting.stderr
    assert "spool segment" in waiting.stderr
    assert run_cli("ingest", cwd=tmp_path).returncode == 0
    done = run_cli("traces", "--json", cwd=tmp_path)
    assert len(json.loads(done.stdout)) == 7 and "not ingested yet" not in done.stderr


# ---------------------------------------------------------------- judge calibrate on thumbs only


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    try:
        yield server
    finally:
        server.stop()


def test_calibrate_says_a_likert_rubric_needs_ratings_not_thumbs(fake_server, tmp_path):
    """Users gave thumbs only (as in the demo): one line naming the missing ratings and how to record them."""
    fake = fake_server.fresh()
    wb = workbench.open(tmp_path)
    client = wb.wrap(FakeOpenAI().client())
    for i in range(6):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {i}"}])
    wb.flush()
    with wb.store.read() as conn:
        ids = [t.id for t in trace_rows.list_traces(conn, limit=10)]
    for i, trace_id in enumerate(ids):
        wb.feedback.thumbs(trace_id, up=i % 2 == 0, user_id=f"u{i}")
    wb.close()
    judged = run_cli("judge", "run", "--rubric", "helpfulness", "--base-url", fake.url, cwd=tmp_path)
    assert judged.returncode == 0, judged.stderr
    result = run_cli("judge", "calibrate", "--rubric", "helpfulness", cwd=tmp_path)
    line = one_line_error(result, 2, "need at least 3 labelled pairs, got 0")
    assert "helpfulness (likert 1-5) is calibrated against user ratings and 0 of 6 judged traces have one" in line
    assert "(6 have thumbs, which only binary rubrics use)" in line
    assert "workbench feedback add TRACE_ID --rating 4" in line
