"""``mine`` on real stores: findings land as feedback rows, runs are idempotent and incremental,
``--since`` and ``--set`` are honoured, bad input fails with one line.

The hand-built sessions here pin the *machinery*, so they run the lexical family, whose verdicts on
them are exact rules; the learned families on the same machinery are in test_signals_mining.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

import workbench
from workbench.commands.mine import parse_settings
from workbench.errors import ValidationError
from workbench.feedback import SignalConfig
from workbench.feedback import detect as detect_any
from workbench.feedback.mining import feedback_row, state_name
from workbench.feedback.mining import mine as mine_any
from workbench.models import Feedback, Trace
from workbench.store import Store, open_store
from workbench.store import feedback as feedback_rows
from workbench.store import sessions as session_rows
from workbench.store import traces as trace_rows

from .conftest import run_cli
from .openai_fakes import FakeOpenAI, chat_body
from .simulated import ChatBuilder

T0 = datetime(2025, 4, 7, 10, 0, tzinfo=UTC)
ANSWER = (
    "Use git branch -m old-name new-name to rename a local branch, then push the new name with "
    "git push origin -u new-name and delete the old remote branch."
)


def lexical(config: SignalConfig | None) -> SignalConfig:
    return (config or SignalConfig()).model_copy(update={"detector": "lexical"})


def mine(store: Store, *, config: SignalConfig | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return mine_any(store, config=lexical(config), **kw)  # type: ignore[arg-type]


def detect(traces, config=None, now=None):  # type: ignore[no-untyped-def]
    return detect_any(traces, lexical(config), now)


@pytest.fixture
def store(store_url: str):
    handle = open_store(store_url)
    yield handle
    handle.close()


def insert(store: Store, traces: list[Trace]) -> None:
    with store.write() as conn:
        trace_rows.insert_traces(conn, [t.model_dump() for t in traces])


def stored(store: Store, **filters: object) -> list[Feedback]:
    with store.read() as conn:
        return feedback_rows.list_feedback(conn, **filters)  # type: ignore[arg-type]


def pairs(rows: list[Feedback]) -> set[tuple[str, str]]:
    return {(r.signal, r.trace_id) for r in rows}


def every_signal_session(start: datetime = T0) -> ChatBuilder:
    """One session that trips every detector once (and the abandon detector on its last answer)."""
    b = ChatBuilder("s-all", "ana", start)
    b.ask("How do I rename a local git branch?", ANSWER, after_s=0)  # 0: regenerated
    b.regenerate("Another take: " + ANSWER, after_s=5)  # 1: re-asked
    b.ask("I asked: how do I rename a local git branch??", ANSWER, after_s=40)  # 2: pushed back on (edit)
    b.ask(ANSWER.replace("-u new-name", "--set-upstream new-name"), "Thanks for the correction.", after_s=60)
    b.ask("What does git stash do?", "It shelves your uncommitted changes.", after_s=60)  # 4: thanked
    b.ask("thanks, that helps a lot!", "You're welcome!", after_s=30)  # 5: copied
    b.mark(copied=True)
    b.ask("Is git rebase safe on shared branches?", "I'm sorry, but I can't help with that.", after_s=60)  # 6: failed
    return b


def later_session(at: datetime, sid: str = "s-late") -> list[Trace]:
    """A one-turn session far later: it moves the miner's clock (the newest trace) past the windows."""
    b = ChatBuilder(sid, "bo", at)
    b.ask("What is a detached HEAD?", "HEAD points at a commit, not a branch.", after_s=0)
    return b.traces


# ------------------------------------------------------------------------------ findings land as rows


def test_every_detector_lands_as_a_feedback_row(store: Store) -> None:
    b = every_signal_session()
    late = later_session(T0 + timedelta(hours=3))
    insert(store, [*b.traces, *late])
    t = [trace.id for trace in b.traces]

    stats = mine(store)

    rows = stored(store, kind="implicit")
    assert {
        ("regenerate", t[0]),
        ("repeat_ask", t[1]),
        ("pushback", t[2]),
        ("positive", t[4]),
        ("positive", t[5]),
        ("abandon", t[6]),
    } <= pairs(rows)
    assert ("abandon", late[0].id) not in pairs(rows)  # the clock is the newest trace: not decided yet
    by_key = {r.idempotency_key: r for r in rows}
    # Each row is exactly the detector's finding, stored with its name@version, strength and evidence.
    expected = detect(b.traces, SignalConfig(), now=late[0].created_at)
    assert len(expected) == len(rows) == stats.added == stats.found
    for finding in expected:
        row = by_key[finding.idempotency_key]
        assert row.source == finding.detector and row.source.endswith(("@1", "@2"))
        assert (row.kind, row.trace_id, row.signal) == ("implicit", finding.trace_id, finding.signal)
        assert row.strength == finding.strength and 0 < row.strength <= 1
        assert row.evidence == finding.evidence and finding.trace_id in row.evidence["trace_ids"]
        assert row.value == (1.0 if row.signal == "positive" else -1.0)
        assert row.created_at == finding.observed_at and row.user_id == "ana"
    edit = next(r for r in rows if r.signal == "pushback")
    assert edit.text and "--set-upstream" in edit.text and edit.evidence["kind"] == "edit"
    assert stats.signals["abandon"].added == 1 and stats.sessions == 2 and stats.traces == len(b.traces) + 1


def test_feedback_row_is_exactly_what_to_feedback_gives() -> None:
    b = every_signal_session()
    for finding in detect(b.traces, now=T0 + timedelta(days=1)):
        fast = feedback_row(finding)
        slow = finding.to_feedback(feedback_id=fast["id"]).model_dump()
        assert fast == slow
        Feedback.model_validate(fast)


def test_sessions_captured_through_the_real_wrapper_are_mined(store_url: str) -> None:
    fake = FakeOpenAI()
    wb = workbench.open(store_url, background_ingest=False)
    try:
        client = wb.wrap(fake.client())
        ctx = {"session_id": "chat-9", "user_id": "u-9"}
        history = [{"role": "user", "content": "What is the capital of Australia?"}]
        fake.push(
            chat_body("Sydney is the capital of Australia.", rid="r1"),
            chat_body("The capital of Australia is Sydney.", rid="r2"),
            chat_body("Sorry: Canberra is the capital.", rid="r3"),
            chat_body("You're welcome!", rid="r4"),
        )
        client.chat.completions.create(model="gpt-4o-mini", messages=history, workbench=ctx)
        client.chat.completions.create(model="gpt-4o-mini", messages=history, workbench=ctx)  # regenerate
        history += [
            {"role": "assistant", "content": "The capital of Australia is Sydney."},
            {"role": "user", "content": "That's wrong, it isn't Sydney."},
        ]
        client.chat.completions.create(model="gpt-4o-mini", messages=history, workbench=ctx)
        history += [
            {"role": "assistant", "content": "Sorry: Canberra is the capital."},
            {"role": "user", "content": "thanks!"},
        ]
        client.chat.completions.create(model="gpt-4o-mini", messages=history, workbench=ctx)
        wb.flush()
        with wb.store.read() as conn:
            ids = {t.provider_response_id: t.id for t in trace_rows.list_traces(conn, session_id="chat-9")}
        stats = mine(wb.store)
        rows = stored(wb.store, kind="implicit")
    finally:
        wb.close()
    assert pairs(rows) == {("regenerate", ids["r1"]), ("pushback", ids["r2"]), ("positive", ids["r3"])}
    assert {r.source for r in rows} == {"regenerate@1", "pushback@1", "positive@1"}
    assert all(r.user_id == "u-9" for r in rows)
    assert stats.added == 3


# --------------------------------------------------------------------------- idempotent, incremental


def test_a_second_run_over_the_same_data_adds_nothing(store: Store) -> None:
    b = every_signal_session()
    insert(store, [*b.traces, *later_session(T0 + timedelta(hours=3))])
    first = mine(store)
    again = mine(store)
    assert first.added > 0 and again.added == 0
    assert again.sessions == 1  # only the session near the clock is read again
    assert len(stored(store)) == first.added
    forced = mine(store, since=T0 - timedelta(days=1))  # re-reading everything is harmless too
    assert forced.found == first.found and forced.added == 0 and len(stored(store)) == first.added


def test_new_turns_and_the_passing_of_time_are_picked_up(store: Store) -> None:
    a = ChatBuilder("s-a", "ana", T0)
    a.ask("How do I rename a local git branch?", ANSWER, after_s=0)
    other = later_session(T0 + timedelta(minutes=10), "s-b")
    insert(store, [*a.traces, *other])
    first = mine(store)
    assert first.added == 0  # 10 minutes of silence is not abandonment yet
    with store.read() as conn:
        marks = session_rows.load_watermarks(conn, [state_name("abandon@2")])
    assert marks[state_name("abandon@2")].watermark == other[0].created_at

    a.ask("that's wrong, the flag is -M", "Right: -M forces the rename.", after_s=12 * 60)  # new turn, old session
    insert(store, a.traces[1:])
    second = mine(store)
    assert pairs(stored(store)) == {("pushback", a.traces[0].id)}
    assert second.added == 1 and second.signals["pushback"].added == 1

    clock = later_session(T0 + timedelta(hours=3), "s-c")  # time passes (measured by the data)
    insert(store, clock)
    third = mine(store)
    # The answer the user had pushed back on before leaving is abandonment; s-b's fine answer is not.
    assert pairs(stored(store, signal="abandon")) == {("abandon", a.traces[1].id)}
    assert third.signals["abandon"].added == 1 and third.added == 1
    fourth = mine(store)
    assert fourth.added == 0 and fourth.sessions == 1  # only s-c is near the clock


def test_now_is_the_clock_and_later_traces_wait(store: Store) -> None:
    b = every_signal_session()
    insert(store, b.traces)
    cut = b.traces[3].created_at
    early = mine(store, now=cut)
    assert early.traces == 4 and early.now == cut
    early_pairs = pairs(stored(store))
    assert early_pairs == {("regenerate", b.traces[0].id), ("repeat_ask", b.traces[1].id), ("pushback", b.traces[2].id)}
    rest = mine(store, now=T0 + timedelta(days=1))  # an explicit clock decides the last answer too
    assert pairs(stored(store)) - early_pairs == {
        ("positive", b.traces[4].id),
        ("positive", b.traces[5].id),
        ("abandon", b.traces[6].id),
    }
    assert rest.added == 3


def test_since_limits_the_run_and_never_leaves_a_gap(store: Store) -> None:
    old = every_signal_session(T0)
    new = every_signal_session(T0 + timedelta(days=2))
    for trace in new.traces:
        trace.id, trace.session_id = "n" + trace.id, "s-new"
    insert(store, [*old.traces, *new.traces])
    narrow = mine(store, since=T0 + timedelta(days=1))
    assert narrow.sessions == 1 and narrow.since == T0 + timedelta(days=1)
    assert {r.trace_id[0] for r in stored(store)} == {"n"}
    assert not narrow.advanced  # the old session was never mined: the next plain run must still read it
    full = mine(store)
    assert full.sessions == 2 and full.advanced
    assert {r.trace_id[0] for r in stored(store)} == {"n", "s"}
    assert full.added == len(detect(old.traces, now=new.traces[-1].created_at))


def test_each_detector_version_keeps_its_own_watermark(store: Store) -> None:
    b = every_signal_session()
    insert(store, [*b.traces, *later_session(T0 + timedelta(hours=3))])
    without = SignalConfig().with_overrides({"repeat_ask.enabled": False})
    mine(store, config=without)
    assert "repeat_ask" not in {r.signal for r in stored(store)}
    with store.read() as conn:
        assert state_name("repeat_ask@1") not in session_rows.load_watermarks(conn, [state_name("repeat_ask@1")])
    enabled = mine(store)  # repeat_ask was never run: every session is read again for it
    assert enabled.sessions == 2 and enabled.added == enabled.signals["repeat_ask"].added == 1


def test_traces_without_a_session_are_skipped(store: Store) -> None:
    b = every_signal_session()
    for trace in b.traces:
        trace.session_id = None
    insert(store, b.traces)
    stats = mine(store, now=T0 + timedelta(days=1))
    assert (stats.sessions, stats.traces, stats.added) == (0, 0, 0)


def test_sessions_stream_whole_and_in_order(store: Store) -> None:
    a = every_signal_session(T0)
    b = every_signal_session(T0 + timedelta(days=1))
    for trace in b.traces:
        trace.id, trace.session_id = "b" + trace.id, "s-b"
    insert(store, [*reversed(b.traces), *reversed(a.traces)])  # stored out of order
    cut = b.traces[4].created_at
    with store.read() as conn:
        every = list(session_rows.iter_sessions(conn, until=cut))
        recent = list(session_rows.iter_sessions(conn, since=b.traces[2].created_at, until=cut))
        decoded = session_rows.decode_session(every[0])
    assert [[row[0] for row in s] for s in every] == [[t.id for t in a.traces], [t.id for t in b.traces[:5]]]
    assert [[row[0] for row in s] for s in recent] == [[t.id for t in b.traces[:5]]]  # whole, older turns too
    assert [(t.id, t.created_at, t.input, t.metadata) for t in decoded] == [
        (t.id, t.created_at, t.input, t.metadata) for t in a.traces
    ]


def test_an_empty_store_mines_nothing(store: Store) -> None:
    stats = mine(store)
    assert (stats.sessions, stats.added, stats.watermark) == (0, 0, None)


def test_worker_processes_store_what_the_detectors_find(store: Store) -> None:
    sessions, traces = [], []
    for n in range(6):
        b = every_signal_session(T0 + timedelta(minutes=30 * n))
        for trace in b.traces:
            trace.id, trace.session_id = f"{n}{trace.id}", f"s{n}"
        sessions.append(b.traces)
        traces += b.traces
    late = later_session(T0 + timedelta(hours=9))
    insert(store, [*traces, *late])
    stats = mine(store, workers=2)
    assert stats.workers == 2 and stats.sessions == 7
    expected = sorted(
        (f.idempotency_key, f.strength, orjson.dumps(f.evidence))
        for s in sessions
        for f in detect(s, now=late[0].created_at)
    )
    got = sorted((r.idempotency_key, r.strength, orjson.dumps(r.evidence)) for r in stored(store))
    assert got == expected and len(got) == 6 * 6 == stats.added


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_mines_and_reports_per_signal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    handle = open_store(url)
    b = every_signal_session()
    insert(handle, [*b.traces, *later_session(T0 + timedelta(hours=3))])
    handle.close()
    off = run_cli(
        "--store",
        url,
        "mine",
        "--detector",
        "lexical",
        "--set",
        "positive.enabled=false",
        "--set",
        "abandon.window_s=7200",
        "--json",
        cwd=tmp_path,
    )
    assert off.returncode == 0, off.stderr
    data = orjson.loads(off.stdout)
    assert "positive" not in data["signals"] and data["signals"]["abandon"]["added"] == 1
    assert data["signals"]["regenerate"] == {"found": 1, "added": 1} and data["window_s"] == 7200
    table = run_cli("--store", url, "mine", "--detector", "lexical", "--since", "2025-04-01", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "positive" in table.stdout and "total" in table.stdout and "2025-04-01" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "bad time 'last tuesday'"),
        (["--set", "repeat_ask.window_s=-5"], "repeat_ask.window_s"),
        (["--detector", "magic"], "unknown --detector 'magic'"),
        (["--detector", "llm"], "--detector llm needs --model"),
        (["--model", "gpt-4o-mini"], "--model and --base-url are for --detector llm"),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("--store", f"sqlite:///{tmp_path / 'bad.db'}", "mine", *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["abandon"], "bad --set 'abandon'; use KEY=VALUE"),
        (["=5"], "bad --set '=5'"),
        (["abandon.silence=5"], "signal config: abandon.silence: unknown setting"),
        (["positive.enabled=maybe"], "signal config: positive.enabled"),
        (["pushback.edit_min_similarity=0.999"], "edit_min_similarity (0.999) must be below"),
    ],
)
def test_bad_settings_name_the_key(items: list[str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_settings(items)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_settings_values_are_json_or_text() -> None:
    config = parse_settings(["abandon.window_s=600", "positive.enabled=false", 'regenerate.metadata_keys=["again"]'])
    assert config.abandon.window_s == 600 and not config.positive.enabled
    assert config.regenerate.metadata_keys == ("again",)
