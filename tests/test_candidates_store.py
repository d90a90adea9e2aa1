"""Candidate refresh (feedback in the store -> candidates table) and the `workbench candidates` CLI.

Real SQLite files and PostgreSQL (WORKBENCH_TEST_PG); traces captured through the real wrapper or
inserted with controlled timestamps; the expected candidates come from the pure builder run on
everything at once, so the chunked two-pass refresh is checked against an independent path.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

import workbench
from workbench.candidates import CandidateConfig, build_candidates
from workbench.candidates.service import explain_candidate, refresh_candidates
from workbench.feedback.explicit import FeedbackAPI
from workbench.ids import new_id
from workbench.models import Candidate, Feedback, JudgeScore, Trace
from workbench.store import Store, open_store
from workbench.store import feedback as feedback_rows
from workbench.store import traces as trace_rows
from workbench.store.candidates import QueueFilter, get_candidate, queue_page, record_decision
from workbench.store.judge import insert_scores

from .conftest import run_cli
from .openai_fakes import FakeOpenAI, chat_body

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=2)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = open_store(store_url)
    yield st
    st.close()


def trace_row(
    text: str,
    *,
    user: str | None,
    at: datetime,
    output: str = "an answer",
    prompt: str | None = "support",
    session: str | None = None,
) -> dict[str, Any]:
    return dict(
        id=new_id(),
        created_at=at,
        operation="chat",
        user_id=user,
        session_id=session,
        prompt_name=prompt,
        prompt_version=1 if prompt else None,
        model_resolved="gpt-x-1",
        input=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        output_text=output,
        stream=False,
        status="ok",
        params={},
        tags=[],
        metadata={},
    )


def fb(
    trace_id: str,
    signal: str,
    *,
    at: datetime,
    value: float | None = None,
    text: str | None = None,
    user: str | None = None,
    kind: str = "explicit",
    strength: float = 1.0,
    **extra: Any,
) -> Feedback:
    return Feedback(
        id=new_id(),
        trace_id=trace_id,
        kind=kind,
        signal=signal,
        value=value,
        text=text,  # type: ignore[arg-type]
        strength=strength,
        source="test" if kind == "explicit" else f"detector:{signal}@1",
        user_id=user,
        created_at=at,
        **extra,
    )


def insert(store: Store, rows: list[dict[str, Any]], feedback: list[Feedback] = ()) -> None:  # type: ignore[assignment]
    with store.write() as conn:
        trace_rows.insert_traces(conn, rows)
        feedback_rows.add_feedback_many(conn, list(feedback))


def stored_candidates(store: Store) -> list[Candidate]:
    with store.read() as conn:
        ids = [r.id for r in queue_page(conn, QueueFilter(status=None), limit=10_000)]
        return [get_candidate(conn, i) for i in ids]


def everything(store: Store) -> tuple[list[Trace], list[Feedback]]:
    with store.read() as conn:
        return (trace_rows.list_traces(conn, limit=None), feedback_rows.list_feedback(conn))


def summary(items: list[Candidate]) -> dict[str, tuple[Any, ...]]:
    return {
        c.cluster_key: (
            c.representative_trace_id,
            c.member_trace_ids,
            c.feedback_ids,
            c.count,
            c.users,
            c.signals,
            c.primary_signal,
            round(c.priority, 9),
            c.input,
            c.output_text,
            c.expected_output,
        )
        for c in items
    }


# ---------------------------------------------------------------- through the real wrapper


def test_captured_calls_with_feedback_become_clustered_redacted_candidates(store_url: str) -> None:
    fake = FakeOpenAI()
    wb = workbench.open(store_url, background_ingest=False)
    try:
        client = wb.wrap(fake.client())
        asks = [
            ("u1", "How do I reset my password? I am bob@example.com", "Click 'forgot'."),
            ("u2", "how can I reset my password?? i am alice@corp.io", "Use the link."),
            ("u3", "What is the capital of Australia?", "Sydney."),
            ("u4", "Is 17 a prime number?", "Yes."),
            ("u5", "What is 2 + 2?", "4"),
        ]
        ids = {}
        for n, (user, question, answer) in enumerate(asks):
            fake.push(chat_body(answer, rid=f"chatcmpl-{n}"))
            resp = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": question}],
                workbench={"user_id": user, "session_id": f"s-{user}"},
            )
            ids[user] = workbench.trace_id(resp)
        wb.flush()
        api = FeedbackAPI(wb.store)
        down1 = api.thumbs("chatcmpl-0", up=False, user_id="u1")  # by provider response id
        down2 = api.thumbs(ids["u2"], up=False, user_id="u2")
        fix = api.correction(ids["u3"], "Canberra. Questions? Call +1 415-555-0132.", user_id="u3")
        api.thumbs(ids["u4"], up=True, user_id="u4")  # positive alone: never a candidate
        stats = refresh_candidates(wb.store, now=NOW)
        found = stored_candidates(wb.store)
        with wb.store.read() as conn:
            original = trace_rows.get_trace(conn, ids["u1"])
    finally:
        wb.close()

    assert (stats.candidate_traces, stats.flagged_traces, stats.candidates, stats.inserted) == (3, 3, 2, 2)
    by_rep = {c.representative_trace_id: c for c in found}
    assert set(by_rep) == {ids["u1"], ids["u3"]}
    password = by_rep[ids["u1"]]
    assert password.member_trace_ids == [ids["u1"], ids["u2"]] and password.count == 2 and password.users == 2
    assert password.feedback_ids == sorted([down1.id, down2.id])
    assert password.signals == {"thumbs_down": 2.0} and password.primary_signal == "thumbs_down"
    assert password.input == [{"role": "user", "content": "How do I reset my password? I am [EMAIL]"}]
    assert password.output_text == "Click 'forgot'."
    assert original.input[0]["content"] == "How do I reset my password? I am bob@example.com"  # trace keeps it
    capital = by_rep[ids["u3"]]
    assert capital.feedback_ids == [fix.id] and capital.primary_signal == "correction"
    assert capital.expected_output == "Canberra. Questions? Call [PHONE]."
    assert password.priority != capital.priority


# ---------------------------------------------------------------- ranking and equivalence


def test_ranking_follows_signal_users_and_recency(store: Store) -> None:
    at = T0 + timedelta(days=1)
    fixed = [trace_row("The refund form rejects my IBAN", user=f"u{i}", at=at + timedelta(minutes=i)) for i in range(3)]
    single = trace_row("Why is the export button grey?", user="u9", at=at)
    old = trace_row("Why is the import button grey?", user="u8", at=T0 - timedelta(days=20))
    weak = trace_row("Translate 'hello' into Finnish", user="u7", at=at, session="s7")
    feedback = [
        fb(t["id"], "correction", text="Use the SEPA form.", user=t["user_id"], at=at + timedelta(hours=1))
        for t in fixed
    ]
    feedback += [
        fb(single["id"], "thumbs", value=0.0, user="u9", at=at + timedelta(hours=1)),
        fb(old["id"], "thumbs", value=0.0, user="u8", at=T0 - timedelta(days=20)),
        fb(
            weak["id"],
            "abandon",
            kind="implicit",
            strength=0.6,
            at=at + timedelta(hours=1),
            evidence={"session_id": "s7"},
        ),
    ]
    insert(store, [*fixed, single, old, weak], feedback)

    refresh_candidates(store, now=NOW, chunk_size=2)
    queue = stored_candidates(store)
    assert [c.representative_trace_id for c in queue] == [fixed[0]["id"], single["id"], old["id"], weak["id"]]
    assert [c.primary_signal for c in queue] == ["correction", "thumbs_down", "thumbs_down", "abandon"]
    assert queue[0].count == 3 and queue[0].users == 3
    traces, rows = everything(store)
    assert summary(queue) == summary(build_candidates(traces, rows, now=NOW))


def _random_store(store: Store, seed: int) -> None:
    """Sessions asking paraphrases, typos and distinct questions, with every kind of feedback."""
    rng = random.Random(seed)
    bases = [
        "How do I reset my password",
        "Where can I download my invoice",
        "Cancel my subscription now",
        "Why does the app crash on startup",
        "Change the email on my account to {e}",
        "Is the premium plan worth it",
        "Is the premium plan not worth it",
        "Convert 17 euros to dollars",
        "Convert 18 euros to dollars",
    ]
    rows, feedback = [], []
    for i in range(70):
        base = rng.choice(bases).format(e=f"user{i}@mail.example.org")
        text = base
        if rng.random() < 0.4:
            pos = rng.randrange(len(text))
            text = text[:pos] + text[pos + 1 :]  # a typo
        if rng.random() < 0.3:
            text = "please " + text.lower() + "?"
        user = f"u{rng.randrange(12)}"
        at = T0 + timedelta(minutes=rng.randrange(3000))
        row = trace_row(text, user=user, at=at, prompt=rng.choice(["support", "billing"]))
        rows.append(row)
        tid, later = row["id"], at + timedelta(minutes=5)
        roll = rng.random()
        if roll < 0.2:
            feedback.append(fb(tid, "thumbs", value=0.0, user=user, at=later))
            if rng.random() < 0.3:  # the same user changes their mind: latest vote wins
                feedback.append(fb(tid, "thumbs", value=1.0, user=user, at=later + timedelta(minutes=1)))
        elif roll < 0.35:
            feedback.append(
                fb(tid, "rating", value=float(rng.randint(1, 5)), user=user, at=later, metadata={"scale": [1, 5]})
            )
        elif roll < 0.45:
            feedback.append(fb(tid, "correction", text=f"Answer {i}: call 020 7946 0958", user=user, at=later))
        elif roll < 0.55:
            feedback.append(fb(tid, "comment", text=rng.choice(["that's wrong", "thanks, great"]), user=user, at=later))
        elif roll < 0.7:
            feedback.append(
                fb(
                    tid,
                    "repeat_ask",
                    kind="implicit",
                    strength=rng.choice([0.5, 0.9]),
                    at=later,
                    evidence={"similarity": 0.9},
                )
            )
        elif roll < 0.8:
            feedback.append(fb(tid, "thumbs", value=1.0, user=f"other{rng.randrange(3)}", at=later))
            feedback.append(fb(tid, "regenerate", kind="implicit", at=later))
        # else: no feedback at all
    insert(store, rows, feedback)


@pytest.mark.parametrize("chunk_size", [1, 7, 2000])
def test_chunked_refresh_equals_one_build_over_everything(store: Store, chunk_size: int) -> None:
    _random_store(store, seed=11)
    stats = refresh_candidates(store, now=NOW, chunk_size=chunk_size)
    traces, rows = everything(store)
    expected = build_candidates(traces, rows, now=NOW)
    assert any(c.count > 1 for c in expected)  # the data really has near-duplicate clusters
    assert stats.candidates == len(expected) == stats.inserted
    assert summary(stored_candidates(store)) == summary(expected)
    assert [c.cluster_key for c in stored_candidates(store)] == [c.cluster_key for c in expected]


def test_refresh_twice_changes_nothing_and_later_only_updates(store: Store) -> None:
    _random_store(store, seed=5)
    first = refresh_candidates(store, now=NOW, chunk_size=9)
    before = {c.id: c for c in stored_candidates(store)}
    again = refresh_candidates(store, now=NOW, chunk_size=4)
    after = {c.id: c for c in stored_candidates(store)}
    assert (again.inserted, again.updated, again.removed, again.unchanged) == (0, 0, 0, first.candidates)
    assert after == before  # same ids, keys, fields and updated_at
    later = refresh_candidates(store, now=NOW + timedelta(days=3))
    assert (later.inserted, later.removed) == (0, 0) and later.updated == first.candidates  # recency decays
    assert {c.id: c.cluster_key for c in stored_candidates(store)} == {i: c.cluster_key for i, c in before.items()}


def test_new_feedback_joins_existing_cluster_and_human_decision_survives(store: Store) -> None:
    first = trace_row("How do I export my data to CSV?", user="u1", at=T0)
    second = trace_row("how do i export my data to csv", user="u2", at=T0 + timedelta(hours=2))
    insert(store, [first, second], [fb(first["id"], "thumbs", value=0.0, user="u1", at=T0)])
    refresh_candidates(store, now=NOW)
    (cand,) = stored_candidates(store)
    with store.write() as conn:
        record_decision(
            conn,
            cand.id,
            "accept",
            "alice",
            None,
            {
                "status": "accepted",
                "labels": ["export"],
                "notes": "real bug",
                "expected_output": "Settings > Export > CSV.",
            },
        )
    later = fb(second["id"], "repeat_ask", kind="implicit", at=T0 + timedelta(hours=3))
    insert(store, [], [later])
    stats = refresh_candidates(store, now=NOW)
    assert (stats.inserted, stats.updated, stats.removed) == (0, 1, 0)
    (kept,) = stored_candidates(store)
    assert kept.id == cand.id and kept.cluster_key == cand.cluster_key
    assert kept.member_trace_ids == [first["id"], second["id"]] and kept.count == 2
    assert later.id in kept.feedback_ids
    assert (kept.status, kept.labels, kept.notes, kept.expected_output) == (
        "accepted",
        ["export"],
        "real bug",
        "Settings > Export > CSV.",
    )


def test_flipped_vote_removes_untouched_candidate_but_keeps_decided_one(store: Store) -> None:
    a = trace_row("Delete my account", user="u1", at=T0)
    b = trace_row("What are your opening hours?", user="u2", at=T0)
    insert(
        store,
        [a, b],
        [fb(a["id"], "thumbs", value=0.0, user="u1", at=T0), fb(b["id"], "thumbs", value=0.0, user="u2", at=T0)],
    )
    refresh_candidates(store, now=NOW)
    decided = next(c for c in stored_candidates(store) if c.representative_trace_id == b["id"])
    with store.write() as conn:
        record_decision(conn, decided.id, "skip", "bob", None, {"status": "skipped"})
    insert(
        store,
        [],
        [
            fb(a["id"], "thumbs", value=1.0, user="u1", at=T0 + timedelta(minutes=1)),
            fb(b["id"], "thumbs", value=1.0, user="u2", at=T0 + timedelta(minutes=1)),
        ],
    )
    stats = refresh_candidates(store, now=NOW)
    assert (stats.flagged_traces, stats.candidates, stats.removed) == (0, 0, 1)
    assert [(c.id, c.status) for c in stored_candidates(store)] == [(decided.id, "skipped")]


def test_uninterpretable_feedback_is_skipped_and_named(store: Store) -> None:
    good = trace_row("Where is my parcel?", user="u1", at=T0)
    odd = trace_row("Where is my letter?", user="u2", at=T0)
    bad = fb(odd["id"], "thumbs", value=0.4, user="u2", at=T0)
    insert(store, [good, odd], [fb(good["id"], "thumbs", value=0.0, user="u1", at=T0), bad])
    stats = refresh_candidates(store, now=NOW)
    assert stats.skipped_feedback == 1 and bad.id in stats.problems[0] and "thumbs" in stats.problems[0]
    assert [c.representative_trace_id for c in stored_candidates(store)] == [good["id"]]


def test_judge_disagreement_raises_priority_like_the_builder(store: Store) -> None:
    rows = [trace_row(q, user=f"u{i}", at=T0) for i, q in enumerate(["Reset 2FA?", "Refund policy?"])]
    insert(store, rows, [fb(r["id"], "thumbs", value=0.0, user=r["user_id"], at=T0) for r in rows])
    judged = rows[0]["id"]
    with store.write() as conn:  # the judge thinks the answer was great (5 of 1-5): disagrees with the user
        insert_scores(
            conn,
            [
                JudgeScore(
                    id=new_id(),
                    trace_id=judged,
                    rubric_id="helpfulness",
                    rubric_version=1,
                    judge_model="judge-1",
                    score=5.0,
                    cache_key="k1",
                    created_at=T0,
                ),
                JudgeScore(
                    id=new_id(),
                    trace_id=judged,
                    rubric_id="helpfulness",
                    rubric_version=1,
                    judge_model="judge-1",
                    score=None,
                    parse_status="unparsed",
                    cache_key="k2",
                    created_at=T0,
                ),
            ],
        )
    refresh_candidates(store, now=NOW)
    by_rep = {c.representative_trace_id: c for c in stored_candidates(store)}
    assert by_rep[judged].priority > by_rep[rows[1]["id"]].priority
    traces, feedback = everything(store)
    expected = build_candidates(traces, feedback, now=NOW, judge_scores={judged: 1.0})
    assert summary(list(by_rep.values())) == summary(expected)


def test_config_reaches_the_builder(store: Store) -> None:
    rows = [trace_row("Book a table for two", user="u1", at=T0)]
    insert(store, rows, [fb(rows[0]["id"], "thumbs", value=0.0, user="u1", at=T0)])
    config = CandidateConfig(half_life_days=1.0)
    refresh_candidates(store, now=NOW, config=config)
    (cand,) = stored_candidates(store)
    assert cand.priority == pytest.approx(0.9 * 0.25)  # weight 0.9, two days at a one-day half-life


def test_explain_candidate_recomputes_the_stored_score(store: Store) -> None:
    rows = [trace_row("Where is the API key page? my key is sk-proj-4fG7hJ2kL9mN3pQ8rS1tV6wX", user="u1", at=T0)]
    insert(store, rows, [fb(rows[0]["id"], "thumbs", value=0.0, user="u1", at=T0)])
    refresh_candidates(store, now=NOW)
    (cand,) = stored_candidates(store)
    explained = explain_candidate(store, cand.id, now=NOW)
    assert explained.score is not None and explained.score.priority == pytest.approx(cand.priority)
    assert explained.redactions == {"api_key": 1} and explained.note is None
    assert [t.id for t in explained.detail.members] == [rows[0]["id"]]


# ---------------------------------------------------------------- CLI


def _cli(tmp_path: Path, url: str, *args: str) -> Any:
    return run_cli(*args, cwd=tmp_path, env={"WORKBENCH_URL": url}, input="")


def test_cli_refresh_list_show_json(tmp_path: Path, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        _random_store(store, seed=3)
    finally:
        store.close()
    refreshed = _cli(tmp_path, sqlite_url, "candidates", "refresh", "--json")
    assert refreshed.returncode == 0, refreshed.stderr
    stats = orjson.loads(refreshed.stdout)
    assert set(stats) == {
        "candidate_traces",
        "flagged_traces",
        "candidates",
        "inserted",
        "updated",
        "unchanged",
        "removed",
        "skipped_feedback",
        "problems",
    }
    assert stats["inserted"] == stats["candidates"] > 0

    listed = orjson.loads(_cli(tmp_path, sqlite_url, "candidates", "--json", "--limit", "500").stdout)
    assert len(listed) == stats["candidates"]
    assert set(listed[0]) == {
        "id",
        "priority",
        "count",
        "users",
        "primary_signal",
        "prompt_name",
        "prompt_version",
        "model",
        "status",
        "labels",
        "input_snippet",
        "created_at",
    }
    assert [row["priority"] for row in listed] == sorted((row["priority"] for row in listed), reverse=True)
    assert "@mail.example.org" not in refreshed.stdout + str(listed)
    signal = listed[-1]["primary_signal"]
    only = orjson.loads(_cli(tmp_path, sqlite_url, "candidates", "--signal", signal, "--json").stdout)
    assert only and {row["primary_signal"] for row in only} == {signal}
    assert len(orjson.loads(_cli(tmp_path, sqlite_url, "candidates", "--limit", "2", "--json").stdout)) == 2
    assert orjson.loads(_cli(tmp_path, sqlite_url, "candidates", "--status", "accepted", "--json").stdout) == []

    shown = _cli(tmp_path, sqlite_url, "candidates", "show", listed[0]["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    detail = orjson.loads(shown.stdout)
    assert set(detail) == {
        "candidate",
        "members",
        "feedback",
        "judge_scores",
        "decisions",
        "score",
        "redactions",
        "note",
    }
    cand = detail["candidate"]
    assert cand["id"] == listed[0]["id"]
    assert [m["id"] for m in detail["members"]] == cand["member_trace_ids"]
    assert {f["id"] for f in detail["feedback"]} >= set(cand["feedback_ids"])
    assert detail["score"]["priority"] > 0 and "priority" in detail["score"]["explain"]

    table = _cli(tmp_path, sqlite_url, "candidates")
    assert table.returncode == 0 and listed[0]["id"] in table.stdout and "priority" in table.stdout
    again = orjson.loads(_cli(tmp_path, sqlite_url, "candidates", "refresh", "--json").stdout)
    assert (again["inserted"], again["removed"]) == (0, 0)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("candidates", "show", "01NOPE"), 4, "no candidate with id '01NOPE'"),
        (("candidates", "--status", "done"), 2, "bad --status 'done'"),
        (("candidates", "--signal", "thumbs"), 2, "bad --signal 'thumbs'"),
    ],
)
def test_cli_bad_input_is_one_clear_line(
    tmp_path: Path, sqlite_url: str, args: tuple[str, ...], code: int, needle: str
) -> None:
    open_store(sqlite_url).close()  # an empty store: the CLI opens only stores that exist
    result = _cli(tmp_path, sqlite_url, *args)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr
