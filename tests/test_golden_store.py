"""Golden sets on the store: build from triage decisions, provenance, the export log, eval statistics.

Real SQLite files and real PostgreSQL (``store_url``); traces, feedback, candidates and decisions
are written with the store's own functions, never faked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from workbench.candidates.redact import redact_text
from workbench.errors import GoldenSetError, NotFoundError, StoreError, ValidationError
from workbench.golden import build_version, diff, load_manifest, load_version, verify
from workbench.golden.evals import EvalItem, EvalRun, compare_runs, place_prompt, run_eval, summarize
from workbench.golden.items import GoldenItem, canonical_line, line_sha256
from workbench.golden.manifest import ItemHash, read_manifest, write_manifest
from workbench.golden.service import build_from_store, default_root, export_logged, show_item, verify_with_log
from workbench.ids import new_id
from workbench.judge import get_rubric
from workbench.judge.runner import JudgeConfig
from workbench.models import Candidate, Feedback, JudgeScore, Prompt
from workbench.store import Store, open_store
from workbench.store import exports as export_rows
from workbench.store.candidates import record_decision, upsert_candidates
from workbench.store.exports import TraceContext
from workbench.store.feedback import add_feedback
from workbench.store.judge import insert_scores
from workbench.store.prompts import register_prompt
from workbench.store.traces import insert_traces

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
TEMPLATE_V1 = "You are a support agent for {product}. Be brief."
TOOLS = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object", "properties": {}}}}]
TOOL_VERSION = "workbench test"


def trace_row(tid: str, question: str, answer: str, *, minutes: int, tools: bool = False) -> dict[str, Any]:
    return {
        "id": tid,
        "created_at": T0 + timedelta(minutes=minutes),
        "operation": "chat",
        "stream": False,
        "status": "ok",
        "prompt_name": "support",
        "prompt_version": 1,
        "variables": {"product": "Acme Router"},
        "model_resolved": "gpt-4o-mini-2024-07-18",
        "params": {"tools": TOOLS} if tools else {},
        "tags": [],
        "metadata": {},
        "user_id": f"u-{minutes}",
        "session_id": f"s-{minutes}",
        "input": [
            {"role": "system", "content": TEMPLATE_V1.format(product="Acme Router")},
            {"role": "user", "content": question},
        ],
        "output_text": answer,
    }


@dataclass
class World:
    """Ids of what ``seed`` wrote, by letter: A accepted+edited, B accepted (correction), C rejected,
    D edited only (still open), E labelled only."""

    traces: dict[str, str]
    feedback: dict[str, str]
    candidates: dict[str, str]
    questions: dict[str, str]


def seed(store: Store) -> World:
    letters = "ABCDE"
    traces = {k: new_id() for k in [*letters, "A2"]}
    questions = {k: f"Question {k}: how do I reset my router model {k}?" for k in letters}
    with store.write() as conn:
        register_prompt(conn, "support", TEMPLATE_V1)
        rows = [
            trace_row(traces[k], questions[k], f"Bad answer {k}.", minutes=i, tools=k == "A")
            for i, k in enumerate(letters)
        ]
        rows.append(trace_row(traces["A2"], questions["A"], "Bad answer A again.", minutes=9))
        insert_traces(conn, rows)
        feedback = {}
        for k in letters:
            fb = Feedback(
                id=new_id(),
                trace_id=traces[k],
                kind="explicit",
                signal="thumbs",
                value=0.0,
                source="user",
                user_id="u-1",
                created_at=T0,
            )
            add_feedback(conn, fb)
            feedback[k] = fb.id
        correction = Feedback(
            id=new_id(),
            trace_id=traces["B"],
            kind="explicit",
            signal="correction",
            text="Hold reset for 10 s; mail bob@example.com if stuck.",
            source="user",
            user_id="u-1",
            created_at=T0 + timedelta(minutes=1),
        )
        add_feedback(conn, correction)
        feedback["B-correction"] = correction.id
        insert_scores(
            conn,
            [
                JudgeScore(
                    id=new_id(),
                    trace_id=traces["A2"],
                    rubric_id="helpfulness",
                    rubric_version=1,
                    judge_model="judge-x",
                    score=2.0,
                    cache_key="k" * 64,
                )
            ],
        )
        cands = [
            Candidate(
                id=new_id(),
                cluster_key=f"cluster-{k}",
                representative_trace_id=traces[k],
                member_trace_ids=[traces[k], traces["A2"]] if k == "A" else [traces[k]],
                feedback_ids=[feedback[k]] + ([feedback["B-correction"]] if k == "B" else []),
                input=rows[i]["input"],
                output_text=rows[i]["output_text"],
                prompt_name="support",
                prompt_version=1,
                model_resolved="gpt-4o-mini-2024-07-18",
                labels=["router"],
                priority=float(10 - i),
            )
            for i, k in enumerate(letters)
        ]
        ids = upsert_candidates(conn, cands).ids
        candidates = {k: ids[f"cluster-{k}"] for k in letters}
        record_decision(conn, candidates["A"], "accept", "ann", None, {"status": "accepted"})
        record_decision(conn, candidates["A"], "edit", "ann", None, {"expected_output": "Hold reset for 10 seconds."})
        record_decision(conn, candidates["B"], "accept", "ann", None, {"status": "accepted"})
        record_decision(conn, candidates["C"], "reject", "ann", None, {"status": "rejected"})
        record_decision(conn, candidates["D"], "edit", "bob", None, {"expected_output": "Unplug it for 30 seconds."})
        record_decision(conn, candidates["E"], "label", "bob", None, {"labels": ["router", "later"]})
    return World(traces, feedback, candidates, questions)


@pytest.fixture
def store(store_url: str) -> Any:
    st = open_store(store_url)
    yield st
    st.close()


def by_candidate(version: Any) -> dict[str, GoldenItem]:
    return {item.provenance.candidate_id: item for item in version.items}


def test_build_turns_accepted_candidates_into_items_with_full_provenance(store, tmp_path):
    world = seed(store)
    built = build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    assert built.result.created and built.result.version == 1 and built.skipped == []
    version = load_version(tmp_path, "support", 1)
    items = by_candidate(version)
    c = world.candidates
    assert set(items) == {c["A"], c["B"], c["D"]}  # C rejected, E only labelled
    a, b, d = items[c["A"]], items[c["B"]], items[c["D"]]
    assert a.expected_output == "Hold reset for 10 seconds." and a.original_output == "Bad answer A."
    assert a.provenance.trace_ids == [world.traces["A"], world.traces["A2"]]
    assert a.provenance.feedback_ids == [world.feedback["A"]]
    assert a.provenance.prompt == "support@1" and a.provenance.model == "gpt-4o-mini-2024-07-18"
    assert a.provenance.rubric_ids == ["helpfulness"] and a.tools == TOOLS and b.tools is None
    assert len(a.provenance.decision_ids) == 2 and a.labels == ["router"]
    # B was accepted without an edit: the user's correction, redacted, is the expected answer
    assert b.expected_output == redact_text("Hold reset for 10 s; mail bob@example.com if stuck.")
    assert "bob@example.com" not in b.expected_output and b.expected_output.startswith("Hold reset for 10 s")
    assert d.expected_output == "Unplug it for 30 seconds."
    # the files: one canonical line per item, sorted by id; the manifest covers every id
    lines = version.path.read_bytes().splitlines()
    assert lines == [canonical_line(item) for item in sorted(version.items, key=lambda i: i.id)]
    assert all(list(json.loads(line)) == sorted(json.loads(line)) for line in lines)
    info = load_manifest(tmp_path, "support").latest
    assert info.file_sha256 == hashlib.sha256(version.path.read_bytes()).hexdigest()
    assert info.candidate_ids == sorted([c["A"], c["B"], c["D"]]) and info.item_count == 3
    assert set(info.trace_ids) == {world.traces[k] for k in ("A", "A2", "B", "D")}
    assert world.feedback["B-correction"] in info.feedback_ids and info.prompts == ["support@1"]
    assert info.rubric_ids == ["helpfulness"] and info.tool_version == TOOL_VERSION and info.source == "accepted"


def test_rebuild_without_new_decisions_writes_nothing_and_a_decision_makes_a_version(store, tmp_path):
    world = seed(store)
    build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    files = sorted(p.name for p in (tmp_path / "golden_sets" / "support").iterdir())
    manifest_bytes = (tmp_path / "golden_sets" / "support" / "manifest.json").read_bytes()
    again = build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    assert not again.result.created and again.result.version == 1
    assert sorted(p.name for p in (tmp_path / "golden_sets" / "support").iterdir()) == files
    assert (tmp_path / "golden_sets" / "support" / "manifest.json").read_bytes() == manifest_bytes
    with store.write() as conn:
        record_decision(conn, world.candidates["B"], "reject", "ann", None, {"status": "rejected"})
    v2 = build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    assert v2.result.created and v2.result.version == 2 and v2.result.info.parent == 1
    changes = diff(tmp_path, "support", 1, 2)
    assert [i.provenance.candidate_id for i in changes.removed] == [world.candidates["B"]]
    assert changes.counts == {"added": 0, "removed": 1, "changed": 0}
    assert v2.result.info.changes == {"added": 0, "removed": 1, "changed": 0}


def test_acceptance_rule_follows_the_latest_deciding_decision(store, tmp_path):
    world = seed(store)
    c = world.candidates
    with store.write() as conn:
        record_decision(conn, c["D"], "undo", "bob", None, {"expected_output": None, "status": "open"})
        record_decision(conn, c["E"], "edit", "bob", None, {"expected_output": "   "})  # blank: not an answer
        record_decision(conn, c["C"], "edit", "bob", None, {"expected_output": "Reset it."})  # still rejected
    build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    assert set(by_candidate(load_version(tmp_path, "support"))) == {c["A"], c["B"]}


def test_since_applies_only_later_decisions_on_top_of_the_base_version(store, tmp_path):
    world = seed(store)
    c = world.candidates
    build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    base = load_version(tmp_path, "support", 1)
    # a hand-made item with no candidate rides along in the base version
    extra = GoldenItem(input=[{"role": "user", "content": "hand-written question"}], expected_output="Yes.")
    build_version(tmp_path, "support", [*base.items, extra], tool_version=TOOL_VERSION)  # v2
    with store.write() as conn:
        record_decision(conn, c["B"], "reject", "ann", None, {"status": "rejected"})
        record_decision(conn, c["C"], "accept", "ann", None, {"status": "accepted"})
    built = build_from_store(store, tmp_path, "support", since_version="v2", tool_version=TOOL_VERSION)
    assert built.result.version == 3 and built.removed_candidates == [c["B"]]
    items = load_version(tmp_path, "support", 3).items
    assert {i.provenance.candidate_id for i in items} == {c["A"], c["C"], c["D"], None}
    assert built.result.info.source == "accepted since v2"
    full = build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)  # no --since drops it
    assert extra.id not in {i.id for i in load_version(tmp_path, "support", full.result.version).items}


def test_two_candidates_with_the_same_input_keep_the_later_decision(store, tmp_path):
    world = seed(store)
    a = next(d.candidate for d in _decided(store) if d.candidate.id == world.candidates["A"])
    twin = a.model_copy(
        update={"id": new_id(), "cluster_key": "cluster-twin", "status": "open", "expected_output": None}
    )
    with store.write() as conn:
        upsert_candidates(conn, [twin])
        record_decision(conn, twin.id, "edit", "cy", None, {"expected_output": "Twin answer."})
    built = build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    items = by_candidate(load_version(tmp_path, "support"))
    assert twin.id in items and world.candidates["A"] not in items
    assert [cid for cid, _ in built.skipped] == [world.candidates["A"]] and "same input" in built.skipped[0][1]


def _decided(store: Store) -> list[Any]:
    with store.read() as conn:
        return export_rows.decided_candidates(conn)


def test_nothing_accepted_is_a_clear_error_and_writes_nothing(store, tmp_path):
    with pytest.raises(GoldenSetError, match="no accepted candidates"):
        build_from_store(store, tmp_path, "empty", tool_version=TOOL_VERSION)
    assert not (tmp_path / "golden_sets").exists()
    with pytest.raises(ValidationError, match="--from"):
        build_from_store(store, tmp_path, "empty", source="rejected", tool_version=TOOL_VERSION)


def test_show_item_returns_stored_traces_feedback_and_decisions(store, tmp_path):
    world = seed(store)
    build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    item = by_candidate(load_version(tmp_path, "support"))[world.candidates["A"]]
    view = show_item(store, tmp_path, "support@v1", item.id[:6])
    rows = view.provenance
    assert view.item == item and rows.candidate.id == world.candidates["A"] and rows.candidate.status == "accepted"
    assert [t.id for t in rows.traces] == [world.traces["A"], world.traces["A2"]]
    assert rows.traces[0].output_text == "Bad answer A." and rows.traces[0].variables == {"product": "Acme Router"}
    assert [f.id for f in rows.feedback] == [world.feedback["A"]] and rows.feedback[0].signal == "thumbs"
    assert [d.action for d in rows.decisions] == ["accept", "edit"]
    assert [s.trace_id for s in rows.judge_scores] == [world.traces["A2"]] and rows.missing == {}
    # an item naming rows the store does not have says so
    orphan = GoldenItem(
        input=[{"role": "user", "content": "q"}],
        provenance={"candidate_id": "gone", "trace_ids": ["nope"], "feedback_ids": ["nofb"]},
    )
    build_version(tmp_path, "orphans", [orphan], tool_version=TOOL_VERSION)
    missing = show_item(store, tmp_path, "orphans", orphan.id).provenance.missing
    assert missing == {"candidate": ["gone"], "traces": ["nope"], "feedback": ["nofb"]}


def test_export_log_rows_carry_both_hashes_and_are_append_only(store, tmp_path):
    seed(store)
    build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    out = tmp_path / "support.csv"
    first = export_logged(store, tmp_path, "support", "csv", out)
    second = export_logged(store, tmp_path, "support@v1", "openai-chat", tmp_path / "chat.jsonl")
    with store.read() as conn:
        rows = export_rows.list_exports(conn, golden_set="support", version=1)
        assert export_rows.list_exports(conn, golden_set="other") == []
        by_hash = export_rows.list_exports(conn, file_hash=first.record.file_hash)
    assert [r.id for r in rows] == [second.record.id, first.record.id] and len(by_hash) == 2
    row = rows[1]
    info = load_manifest(tmp_path, "support").latest
    assert row.file_hash == info.file_sha256 and row.format == "csv" and row.path == str(out)
    assert row.output_sha256 == hashlib.sha256(out.read_bytes()).hexdigest() and row.item_count == 3
    assert row.feedback_ids == first.result.feedback_ids and row.feedback_ids
    with store.write() as conn, pytest.raises(StoreError, match="never replaced"):
        export_rows.insert_export(conn, row.model_copy(update={"path": "elsewhere"}))
    with store.read() as conn:
        assert export_rows.list_exports(conn, golden_set="support")[1].path == str(out)


def test_verify_with_the_export_log_catches_a_file_and_manifest_edited_together(store, tmp_path):
    seed(store)
    build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)
    export_logged(store, tmp_path, "support", "csv", tmp_path / "out.csv")
    assert verify_with_log(store, tmp_path, "support").ok
    directory = tmp_path / "golden_sets" / "support"
    version = load_version(tmp_path, "support", 1)
    edited = [
        item.model_copy(update={"expected_output": "Tampered."}) if i == 0 else item
        for i, item in enumerate(version.items)
    ]
    lines = [canonical_line(item) for item in edited]
    data = b"".join(line + b"\n" for line in lines)
    (directory / "v1.jsonl").write_bytes(data)
    manifest = read_manifest(directory / "manifest.json")
    entry = manifest.versions[0]
    entry.file_sha256 = line_sha256(data)
    entry.items = [ItemHash(id=item.id, sha256=line_sha256(line)) for item, line in zip(edited, lines, strict=True)]
    write_manifest(directory / "manifest.json", manifest)
    assert verify(tmp_path, "support").ok  # the files alone cannot tell
    report = verify_with_log(store, tmp_path, "support")
    assert [p.kind for p in report.problems] == ["export_log"] and "after it was exported" in report.problems[0].message


def test_default_root_is_the_project_directory_of_a_sqlite_store(tmp_path):
    store = open_store(tmp_path / "proj" / ".workbench" / "workbench.db")
    try:
        assert default_root(store) == tmp_path / "proj"
    finally:
        store.close()
    assert default_root(None) == Path.cwd()


# ---------------------------------------------------------------- eval pieces (pure)


def _prompt(template: str, variables: list[str]) -> Prompt:
    return Prompt(id=new_id(), name="support", version=2, template=template, variables=variables, content_hash="h")


def test_place_prompt_replaces_the_old_rendering_or_the_system_message():
    item = GoldenItem(
        input=[
            {"role": "system", "content": "You are a support agent for Acme Router. Be brief."},
            {"role": "user", "content": "hi"},
        ]
    )
    ctx = TraceContext("t1", "support", 1, {"product": "Acme Router"}, {})
    placed = place_prompt(item, _prompt("Detailed agent for {product}.", ["product"]), ctx, TEMPLATE_V1)
    assert placed == [
        {"role": "system", "content": "Detailed agent for Acme Router."},
        {"role": "user", "content": "hi"},
    ]
    no_vars = place_prompt(item, _prompt("Plain system.", []), None, None)
    assert no_vars[0] == {"role": "system", "content": "Plain system."} and len(no_vars) == 2
    bare = GoldenItem(input=[{"role": "user", "content": "hi"}])
    assert place_prompt(bare, _prompt("Plain system.", []), None, None)[0]["role"] == "system"
    assert "needs variable" in place_prompt(item, _prompt("For {customer}.", ["customer"]), ctx, TEMPLATE_V1)
    assert "did not record" in place_prompt(item, _prompt("For {product}.", ["product"]), None, None)
    redacted = "Agent for {product}, reach us at ops@example.com."  # the input no longer holds this text
    assert "cannot tell where" in place_prompt(item, _prompt("For {product}.", ["product"]), ctx, redacted)


def _run(run_id: str, scores: dict[str, float | None]) -> EvalRun:
    return EvalRun(
        run_id,
        "2026-11-01T00:00:00+00:00",
        "s",
        1,
        "h",
        "support@1",
        "m",
        "helpfulness",
        1,
        "j",
        [EvalItem(i, "ok", score=s) for i, s in scores.items()],
    )


def test_comparison_matches_scipy_paired_t_and_an_exact_sign_test():
    before = {f"i{k}": float(v) for k, v in enumerate([2, 3, 3, 4, 2, 5, 1])}
    after = {f"i{k}": float(v) for k, v in enumerate([4, 3, 5, 4, 3, 4, 3])}
    after["only-new"] = 5.0
    c = compare_runs(_run("new", after), _run("old", before))
    diffs = np.array([after[k] - before[k] for k in before])
    oracle = stats.ttest_1samp(diffs, 0.0).confidence_interval(0.95)
    assert c.n == 7 and (c.wins, c.losses, c.ties) == (4, 1, 2)
    assert c.mean_difference == pytest.approx(diffs.mean())
    assert (c.ci_low, c.ci_high) == (pytest.approx(oracle.low), pytest.approx(oracle.high))
    assert c.sign_test_p == pytest.approx(2 * (1 + 5) / 2**5)  # P(X <= 1 | n=5, p=1/2), two-sided
    summary = summarize(list(after.values()))
    ci = stats.t.interval(
        0.95, len(after) - 1, loc=np.mean(list(after.values())), scale=stats.sem(list(after.values()))
    )
    assert summary["n"] == 8 and (summary["ci_low"], summary["ci_high"]) == (pytest.approx(ci[0]), pytest.approx(ci[1]))
    assert summarize([3.0])["ci_low"] is None and summarize([])["mean"] is None


def test_eval_refuses_bad_input_before_calling_anything(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    try:
        seed(store)
        build_from_store(store, tmp_path, "support", tool_version=TOOL_VERSION)

        def no_client() -> None:
            raise AssertionError("no model call expected")

        judge = JudgeConfig(model="j", base_url="http://127.0.0.1:9/v1", api_key="x")
        common = {"rubric": get_rubric("helpfulness"), "make_client": no_client, "judge": judge}
        with pytest.raises(ValidationError, match="pairwise"):
            run_eval(
                store,
                tmp_path,
                "support",
                prompt_ref="support@1",
                **{**common, "rubric": get_rubric("pairwise_preference")},
            )
        with pytest.raises(NotFoundError, match="no prompt 'support@7'"):
            run_eval(store, tmp_path, "support", prompt_ref="support@7", **common)
        with pytest.raises(NotFoundError, match="has no v4"):
            run_eval(store, tmp_path, "support@v4", prompt_ref="support@1", **common)
        with store.write() as conn:
            register_prompt(conn, "other", "Agent for {customer}.")
        with pytest.raises(GoldenSetError, match=r"no item can be replayed with other@1 .*needs variable 'customer'"):
            run_eval(store, tmp_path, "support", prompt_ref="other@1", **common)
        assert not (tmp_path / "golden_sets" / "support" / "evals").exists()
    finally:
        store.close()
