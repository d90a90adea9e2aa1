"""workbench.store.candidates against real SQLite files and (when WORKBENCH_TEST_PG is set) PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from workbench.errors import NotFoundError, ValidationError
from workbench.models import Candidate
from workbench.store import Store, open_store
from workbench.store.candidates import (
    QueueFilter,
    candidate_detail,
    count_queue,
    get_candidate,
    list_decisions,
    queue_facets,
    queue_page,
    record_decision,
    undo_decision,
    upsert_candidates,
    version_overview,
)
from workbench.store.schema import candidates, decisions, feedback, judge_scores
from workbench.store.traces import insert_traces

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Store]:
    url = tmp_path / "wb.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    st = open_store(url)
    yield st
    st.close()


def cand(n: int, **kw: Any) -> Candidate:
    base: dict[str, Any] = dict(
        id=f"{n:026x}",
        cluster_key=f"k{n}",
        representative_trace_id=f"t{n}",
        member_trace_ids=[f"t{n}"],
        input=[{"role": "user", "content": f"question {n}"}],
        output_text=f"answer {n}",
        priority=float(n % 7),
        primary_signal="thumbs",
        prompt_name="support",
        prompt_version=1,
        model_resolved="m1",
        created_at=T0,
        updated_at=T0,
    )
    base.update(kw)
    return Candidate(**base)


def _state(store: Store, cid: str) -> Candidate:
    with store.read() as conn:
        return get_candidate(conn, cid)


# ---------------------------------------------------------------- upsert


def test_upsert_inserts_then_updates_by_cluster_key(store: Store) -> None:
    with store.write() as conn:
        first = upsert_candidates(conn, [cand(1), cand(2)])
    assert (first.inserted, first.updated) == (2, 0)
    assert first.ids == {"k1": f"{1:026x}", "k2": f"{2:026x}"}
    rebuilt = cand(
        99,
        cluster_key="k1",
        priority=6.5,
        count=3,
        member_trace_ids=["t1", "t7", "t8"],
        expected_output="from a correction",
        output_text="new output",
    )
    with store.write() as conn:
        second = upsert_candidates(conn, [rebuilt, cand(3)])
    assert (second.inserted, second.updated) == (1, 1)
    assert second.ids["k1"] == f"{1:026x}"  # the existing id is kept
    got = _state(store, f"{1:026x}")
    assert (got.priority, got.count, got.member_trace_ids) == (6.5, 3, ["t1", "t7", "t8"])
    assert got.expected_output == "from a correction"  # nobody decided yet: the builder may propose
    assert got.created_at == T0 and got.updated_at > T0


def test_upsert_keeps_what_a_person_decided(store: Store) -> None:
    with store.write() as conn:
        upsert_candidates(conn, [cand(1, expected_output="proposal")])
        record_decision(conn, f"{1:026x}", "accept", "ana", None, {"status": "accepted"})
        record_decision(conn, f"{1:026x}", "label", "ana", None, {"labels": ["billing"], "notes": "looked"})
        record_decision(conn, f"{1:026x}", "edit", "ana", None, {"expected_output": "human answer"})
    with store.write() as conn:
        upsert_candidates(
            conn,
            [
                cand(
                    5,
                    cluster_key="k1",
                    priority=0.1,
                    expected_output="new proposal",
                    status="open",
                    labels=["x"],
                    notes="machine",
                )
            ],
        )
    got = _state(store, f"{1:026x}")
    assert (got.status, got.labels, got.notes, got.expected_output) == (
        "accepted",
        ["billing"],
        "looked",
        "human answer",
    )
    assert got.priority == 0.1  # machine fields still refresh


def test_upsert_duplicate_keys_in_one_call_last_wins(store: Store) -> None:
    with store.write() as conn:
        result = upsert_candidates(conn, [cand(1, priority=1.0), cand(2, cluster_key="k1", priority=2.0)])
    assert (result.inserted, result.updated) == (1, 0)
    with store.read() as conn:
        assert count_queue(conn, QueueFilter(status=None)) == 1
        assert get_candidate(conn, f"{2:026x}").priority == 2.0


def test_get_candidate_missing_names_the_id(store: Store) -> None:
    with store.read() as conn, pytest.raises(NotFoundError, match="nope"):
        get_candidate(conn, "nope")


# ---------------------------------------------------------------- queue


def _fill(store: Store, n: int = 157) -> list[Candidate]:
    rng = random.Random(7)
    items = [
        cand(
            i,
            priority=float(rng.choice([0.0, 0.5, 1.0, 1.5, 2.0, rng.random()])),
            status=rng.choice(["open", "open", "accepted", "rejected"]),
            primary_signal=rng.choice(["thumbs", "pushback", "repeat_ask"]),
            prompt_version=rng.choice([1, 2]),
            model_resolved=rng.choice(["m1", "m2"]),
        )
        for i in range(1, n + 1)
    ]
    with store.write() as conn:
        upsert_candidates(conn, items)
    return items


def _oracle(items: list[Candidate], keep: Any) -> list[str]:
    return [c.id for c in sorted((c for c in items if keep(c)), key=lambda c: (-c.priority, c.id))]


@pytest.mark.parametrize(
    "flt,keep",
    [
        (QueueFilter(), lambda c: c.status == "open"),
        (QueueFilter(status=None), lambda c: True),
        (
            QueueFilter(status="rejected", signal="pushback"),
            lambda c: c.status == "rejected" and c.primary_signal == "pushback",
        ),
        (QueueFilter(status=None, prompt="support@2"), lambda c: c.prompt_version == 2),
        (QueueFilter(status=None, prompt="support"), lambda c: True),
        (QueueFilter(status="open", model="m2"), lambda c: c.status == "open" and c.model_resolved == "m2"),
    ],
)
def test_keyset_pages_walk_the_queue_in_order_both_ways(store: Store, flt: QueueFilter, keep: Any) -> None:
    items = _fill(store)
    expected = _oracle(items, keep)
    seen: list[str] = []
    with store.read() as conn:
        page = queue_page(conn, flt, limit=10)
        while page:
            seen += [r.id for r in page]
            page = queue_page(conn, flt, after=page[-1].cursor, limit=10)
        assert seen == expected
        assert count_queue(conn, flt) == len(expected)
        # and backwards from the end, pages come back in display order
        back: list[str] = []
        if expected:
            last = next(r for r in queue_page(conn, flt, limit=len(expected)) if r.id == expected[-1])
            back = [last.id]
            page = queue_page(conn, flt, before=last.cursor, limit=7)
            while page:
                back = [r.id for r in page] + back
                page = queue_page(conn, flt, before=page[0].cursor, limit=7)
        assert back == expected


def test_search_is_substring_case_insensitive_and_escapes_wildcards(store: Store) -> None:
    with store.write() as conn:
        upsert_candidates(
            conn,
            [
                cand(1, input=[{"role": "user", "content": "Refund for 100% of the plan"}]),
                cand(2, input=[{"role": "user", "content": "refund_policy please"}]),
                cand(3, output_text="We REFUND within 30 days"),
                cand(4, input=[{"role": "user", "content": "nothing here"}]),
            ],
        )
        record_decision(conn, f"{4:026x}", "note", "ana", None, {"notes": "customer wants a refund"})

    def ids(q: str) -> set[int]:
        with store.read() as conn:
            return {int(r.id, 16) for r in queue_page(conn, QueueFilter(status=None, text=q))}

    assert ids("refund") == {1, 2, 3, 4}
    assert ids("100%") == {1}
    assert ids("d_p") == {2}
    assert ids("0% of") == {1}
    assert ids("%") == {1, 2, 3, 4}  # 1-2 characters without a letter or digit do not search yet (search_term)
    assert ids(f"{3:026x}") == {3}
    with store.read() as conn:
        assert count_queue(conn, QueueFilter(status=None, text="refund"), cap=2) == 2


def test_bad_queue_arguments_are_named(store: Store) -> None:
    with store.read() as conn:
        with pytest.raises(ValidationError, match="support@x"):
            queue_page(conn, QueueFilter(prompt="support@x"))
        with pytest.raises(ValidationError, match="after or before"):
            queue_page(conn, after=(1.0, "a"), before=(1.0, "b"))


def test_facets_list_values_present(store: Store) -> None:
    items = _fill(store, 40)
    with store.read() as conn:
        facets = queue_facets(conn)
    assert facets.statuses == {s: sum(c.status == s for c in items) for s in {c.status for c in items}}
    assert facets.signals == sorted({c.primary_signal for c in items})
    assert facets.prompts == sorted({f"support@{c.prompt_version}" for c in items})
    assert facets.models == sorted({c.model_resolved for c in items})


# ---------------------------------------------------------------- decisions


def test_record_decision_appends_and_updates_in_one_transaction(store: Store) -> None:
    with store.write() as conn:
        upsert_candidates(conn, [cand(1)])
    cid = f"{1:026x}"
    with store.write() as conn:
        d = record_decision(conn, cid, "accept", "ana", None, {"status": "accepted"})
    assert d.before == {"status": "open", "labels": [], "notes": None, "expected_output": None}
    assert _state(store, cid).status == "accepted"
    # a failure later in the same transaction leaves neither the log row nor the status change
    with pytest.raises(RuntimeError), store.write() as conn:
        record_decision(conn, cid, "reject", "ana", None, {"status": "rejected"})
        raise RuntimeError("crash")
    assert _state(store, cid).status == "accepted"
    with store.read() as conn:
        assert [x.action for x in list_decisions(conn, cid)] == ["accept"]


@pytest.mark.parametrize(
    "after,match",
    [
        ({"status": "done"}, "bad status 'done'"),
        ({"priority": 3}, "'priority' cannot be set"),
        ({"labels": "a,b"}, "labels must be a list"),
        ({"notes": 5}, "notes must be text"),
    ],
)
def test_bad_decisions_are_refused_and_write_nothing(store: Store, after: dict[str, Any], match: str) -> None:
    with store.write() as conn:
        upsert_candidates(conn, [cand(1)])
    with pytest.raises(ValidationError, match=match), store.write() as conn:
        record_decision(conn, f"{1:026x}", "edit", "ana", None, after)
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(decisions)).scalar_one() == 0


def test_actor_and_action_are_required(store: Store) -> None:
    with store.write() as conn:
        upsert_candidates(conn, [cand(1)])
        with pytest.raises(ValidationError, match="actor"):
            record_decision(conn, f"{1:026x}", "accept", "", None, {"status": "accepted"})
        with pytest.raises(ValidationError, match="action"):
            record_decision(conn, f"{1:026x}", "x" * 41, "ana", None, {"status": "accepted"})


def test_decision_on_deleted_candidate_raises_and_writes_nothing(store: Store) -> None:
    with store.write() as conn:
        upsert_candidates(conn, [cand(1)])
        conn.execute(candidates.delete())
    with pytest.raises(NotFoundError, match="no longer exists"), store.write() as conn:
        record_decision(conn, f"{1:026x}", "accept", "ana", None, {"status": "accepted"})
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(decisions)).scalar_one() == 0


def test_undo_is_a_new_decision_restoring_before(store: Store) -> None:
    with store.write() as conn:
        upsert_candidates(conn, [cand(1)])
    cid = f"{1:026x}"
    with store.write() as conn:
        record_decision(conn, cid, "label", "ana", None, {"labels": ["a"]})
        d = record_decision(conn, cid, "reject", "ana", None, {"status": "rejected"})
    with store.write() as conn:
        u = undo_decision(conn, d.id, "bob")
    assert u.action == "undo" and u.after["undoes"] == d.id and u.actor == "bob"
    got = _state(store, cid)
    assert (got.status, got.labels) == ("open", ["a"])
    with store.read() as conn:
        assert [x.action for x in list_decisions(conn, cid)] == ["label", "reject", "undo"]
    with pytest.raises(NotFoundError, match="zzz"), store.write() as conn:
        undo_decision(conn, "zzz", "bob")


# ---------------------------------------------------------------- detail and overview


def _trace(tid: str, version: int, model: str, at: datetime) -> dict[str, Any]:
    return {
        "id": tid,
        "created_at": at,
        "operation": "chat",
        "stream": False,
        "status": "ok",
        "prompt_name": "support",
        "prompt_version": version,
        "model_resolved": model,
        "user_id": "u",
        "input": [{"role": "user", "content": f"q {tid}"}],
        "output_text": f"a {tid}",
        "params": {},
        "tags": [],
        "metadata": {},
    }


def _feedback(fid: str, tid: str, kind: str, signal: str, value: float | None = None) -> dict[str, Any]:
    return {
        "id": fid,
        "trace_id": tid,
        "kind": kind,
        "signal": signal,
        "value": value,
        "strength": 1.0,
        "source": "test",
        "evidence": {"trace_ids": [tid]},
        "metadata": {},
        "idempotency_key": fid,
        "created_at": T0,
    }


def test_candidate_detail_gathers_members_feedback_scores_and_history(store: Store) -> None:
    with store.write() as conn:
        insert_traces(
            conn,
            [_trace("ta", 1, "m1", T0), _trace("tb", 1, "m1", T0 + timedelta(minutes=1)), _trace("tc", 1, "m1", T0)],
        )
        conn.execute(
            feedback.insert(),
            [
                _feedback("f1", "ta", "explicit", "thumbs", 0.0),
                _feedback("f2", "tb", "implicit", "pushback"),
                _feedback("f3", "tc", "explicit", "thumbs", 1.0),
            ],
        )
        conn.execute(
            judge_scores.insert(),
            [
                {
                    "id": "j1",
                    "trace_id": "tb",
                    "rubric_id": "r",
                    "rubric_version": 1,
                    "judge_model": "jm",
                    "score": 3.0,
                    "parse_status": "ok",
                    "cache_key": "c",
                    "created_at": T0,
                }
            ],
        )
        upsert_candidates(
            conn, [cand(1, representative_trace_id="ta", member_trace_ids=["ta", "tb", "gone"], feedback_ids=["f1"])]
        )
        record_decision(conn, f"{1:026x}", "accept", "ana", None, {"status": "accepted"})
    with store.read() as conn:
        d = candidate_detail(conn, f"{1:026x}")
    assert [t.id for t in d.members] == ["ta", "tb"]
    assert {f.id for f in d.feedback} == {"f1", "f2"}  # f3 is on a trace outside the cluster
    assert [s.id for s in d.judge_scores] == ["j1"]
    assert [x.action for x in d.decisions] == ["accept"]


def test_version_overview_matches_counts_from_the_rows(store: Store) -> None:
    rng = random.Random(3)
    traces, fbs, scores = [], [], []
    configs = [(1, "m1"), (2, "m1"), (2, "m2")]
    for i in range(300):
        version, model = configs[i % 3]
        tid = f"t{i:04d}"
        traces.append(_trace(tid, version, model, T0 + timedelta(minutes=i)))
        if rng.random() < 0.6:
            fbs.append(_feedback(f"th{i}", tid, "explicit", "thumbs", float(rng.random() < 0.5 + 0.1 * version)))
        for signal in ("repeat_ask", "pushback"):
            for k in range(rng.choice([0, 0, 1, 2])):  # several findings on one trace count once
                fbs.append(_feedback(f"{signal}{i}-{k}", tid, "implicit", signal))
        if i % 5 == 0:
            scores.append(
                {
                    "id": f"j{i}",
                    "trace_id": tid,
                    "rubric_id": "help",
                    "rubric_version": 1,
                    "judge_model": "jm",
                    "score": float(rng.randint(1, 5)),
                    "parse_status": "ok",
                    "cache_key": f"c{i}",
                    "created_at": T0,
                }
            )
    scores.append(
        {
            "id": "jbad",
            "trace_id": "t0000",
            "rubric_id": "help",
            "rubric_version": 1,
            "judge_model": "jm",
            "score": None,
            "parse_status": "unparsed",
            "cache_key": "cb",
            "created_at": T0,
        }
    )
    with store.write() as conn:
        insert_traces(conn, traces)
        conn.execute(feedback.insert(), fbs)
        conn.execute(judge_scores.insert(), scores)
        upsert_candidates(
            conn,
            [
                cand(1, prompt_version=2, model_resolved="m1"),
                cand(2, prompt_version=2, model_resolved="m1", status="accepted"),
            ],
        )
    with store.read() as conn:
        rows = {r.key: r for r in version_overview(conn)}
    by_trace = {t["id"]: (t["prompt_name"], t["prompt_version"], t["model_resolved"]) for t in traces}
    for key in {("support", v, m) for v, m in configs}:
        r = rows[key]
        mine = [t for t in traces if by_trace[t["id"]] == key]
        assert r.traces == len(mine)
        assert r.first_seen == min(t["created_at"] for t in mine)
        thumbs = [f for f in fbs if f["signal"] == "thumbs" and by_trace[f["trace_id"]] == key]
        assert (r.thumbs_n, r.thumbs_up) == (len(thumbs), sum(f["value"] == 1.0 for f in thumbs))
        for signal in ("repeat_ask", "pushback"):
            assert r.implicit.get(signal, 0) == len(
                {f["trace_id"] for f in fbs if f["signal"] == signal and by_trace[f["trace_id"]] == key}
            )
        js = [s["score"] for s in scores if s["score"] is not None and by_trace[s["trace_id"]] == key]
        n, total, total_sq = r.judge["help"]
        assert (n, total, total_sq) == (len(js), pytest.approx(sum(js)), pytest.approx(sum(x * x for x in js)))
    assert rows[("support", 2, "m1")].open_candidates == 2 - 1
    assert rows[("support", 1, "m1")].open_candidates == 0
