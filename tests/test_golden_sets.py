"""Golden-set versions on disk: build, rebuild, load, diff, verify, split and leakage."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rapidfuzz import fuzz, utils
from scipy.stats import binomtest

from tests.golden_data import oasst_items, tool_item
from workbench.errors import GoldenSetError, NotFoundError, ValidationError
from workbench.golden import (
    GoldenItem,
    Split,
    build_version,
    diff,
    find_item,
    from_candidate,
    item_id_for,
    leakage_check,
    list_sets,
    load_manifest,
    load_version,
    parse_ref,
    resolve_leaks,
    split_items,
    verify,
)
from workbench.golden.atomic import atomic_write
from workbench.models import Candidate

TOOL = "workbench 0.1.0-test"


@pytest.fixture
def items() -> list[dict]:
    return [*oasst_items(), tool_item()]


@pytest.fixture
def built(tmp_path: Path, items: list[dict]) -> Path:
    build_version(tmp_path, "support", items, tool_version=TOOL, source="accepted")
    return tmp_path


def set_file(root: Path, version: int = 1) -> Path:
    return root / "golden_sets" / "support" / f"v{version}.jsonl"


# --- build -----------------------------------------------------------------------------------


def test_build_writes_sorted_canonical_lines_and_manifest(built: Path, items: list[dict]) -> None:
    data = set_file(built).read_bytes()
    assert data.endswith(b"\n")
    lines = data.decode("utf-8").split("\n")[:-1]
    assert len(lines) == len(items) == 36
    parsed = [json.loads(line) for line in lines]
    ids = [row["id"] for row in parsed]
    assert ids == sorted(ids)
    for line, row in zip(lines, parsed, strict=True):  # keys sorted, compact, UTF-8 (stdlib json as oracle)
        assert line == json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    manifest = json.loads((built / "golden_sets" / "support" / "manifest.json").read_text())
    entry = manifest["versions"][0]
    assert entry["version"] == 1 and entry["parent"] is None and entry["item_count"] == 36
    assert entry["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert [e["sha256"] for e in entry["items"]] == [hashlib.sha256(line.encode()).hexdigest() for line in lines]
    assert [e["id"] for e in entry["items"]] == ids
    assert entry["tool_version"] == TOOL and entry["source"] == "accepted"
    expected_traces = sorted({t for item in items for t in item["provenance"]["trace_ids"]})
    assert entry["trace_ids"] == expected_traces
    assert entry["candidate_ids"] == sorted(item["provenance"]["candidate_id"] for item in items)
    assert entry["feedback_ids"] == sorted({f for item in items for f in item["provenance"]["feedback_ids"]})
    assert entry["prompts"] == ["assistant@1"] and entry["models"] == ["oasst-crowd"]
    assert entry["rubric_ids"] == ["helpfulness"]


def test_rebuild_with_identical_items_makes_no_new_version(built: Path, items: list[dict]) -> None:
    before = set_file(built).read_bytes()
    shuffled = copy.deepcopy(items)
    random.Random(7).shuffle(shuffled)
    result = build_version(built, "support", shuffled, tool_version="other")
    assert not result.created and result.version == 1
    assert len(load_manifest(built, "support").versions) == 1
    assert not set_file(built, 2).exists()
    assert set_file(built).read_bytes() == before


def test_new_version_records_parent_and_diff(built: Path, items: list[dict]) -> None:
    v1_ids = [item.id for item in load_version(built, "support", 1).items]
    changed = copy.deepcopy(items)
    edited = changed[3]
    edited["expected_output"] = "A better answer, edited in triage."
    removed = changed.pop(5)
    added = {"input": [{"role": "user", "content": "Brand new question?"}], "expected_output": "Yes."}
    changed.append(added)
    result = build_version(built, "support", changed, tool_version=TOOL, created_at=datetime(2025, 1, 2, tzinfo=UTC))
    assert result.created and result.version == 2
    info = load_manifest(built, "support").versions[1]
    assert info.parent == 1 and info.changes == {"added": 1, "removed": 1, "changed": 1}
    assert info.created_at == datetime(2025, 1, 2, tzinfo=UTC)
    d = diff(built, "support", "v1", 2)
    assert [i.id for i in d.added] == [item_id_for(added["input"])]
    assert [i.id for i in d.removed] == [item_id_for(removed["input"])]
    assert [c.id for c in d.changed] == [item_id_for(edited["input"])]
    assert d.changed[0].fields == ["expected_output"]
    assert d.changed[0].after.expected_output == "A better answer, edited in triage."
    assert item_id_for(removed["input"]) in v1_ids
    reverse = diff(built, "support", 2, 1)
    assert reverse.counts == {"added": 1, "removed": 1, "changed": 1}


def test_base_version_carries_items_forward(built: Path) -> None:
    extra = {"input": [{"role": "user", "content": "Only the new one"}], "expected_output": "ok"}
    result = build_version(built, "support", [extra], tool_version=TOOL, base_version=1)
    v2 = load_version(built, "support")
    assert result.version == 2 and v2.info.parent == 1 and len(v2.items) == 37
    assert diff(built, "support", 1, 2).counts == {"added": 1, "removed": 0, "changed": 0}


def test_item_id_is_a_hash_of_the_input_only() -> None:
    base = {"input": [{"role": "user", "content": "héllo"}]}
    a = GoldenItem.model_validate({**base, "expected_output": "x"})
    b = GoldenItem.model_validate({**base, "expected_output": "y", "labels": ["z"]})
    c = GoldenItem.model_validate({**base, "tools": [{"type": "function", "function": {"name": "f"}}]})
    assert a.id == b.id != c.id
    assert (
        a.id
        == hashlib.sha256(
            json.dumps({"input": base["input"]}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()[:16]
    )


def test_from_candidate_keeps_provenance() -> None:
    candidate = Candidate(
        id="cand-1",
        cluster_key="k",
        representative_trace_id="t-rep",
        member_trace_ids=["t-2", "t-rep"],
        feedback_ids=["f-1"],
        input=[{"role": "user", "content": "q"}],
        output_text="bad",
        expected_output="good",
        labels=["x"],
        prompt_name="support",
        prompt_version=3,
        model_resolved="gpt-x",
    )
    item = from_candidate(candidate, rubric_ids=["r1"], decision_ids=["d1"])
    assert item.provenance.trace_ids == ["t-rep", "t-2"] and item.provenance.source_trace_id == "t-rep"
    assert item.provenance.prompt == "support@3" and item.provenance.model == "gpt-x"
    assert (item.expected_output, item.original_output) == ("good", "bad")
    with pytest.raises(ValidationError, match="candidate cand-2: input"):
        from_candidate(candidate.model_copy(update={"id": "cand-2", "input": []}))


# --- load, list, refs --------------------------------------------------------------------------


def test_load_list_and_refs(built: Path, items: list[dict]) -> None:
    version = load_version(built, "support")
    assert version.ref == "support@v1" and len(version.items) == 36
    assert load_version(built, "support", "v1").items == load_version(built, "support", 1).items
    [summary] = list_sets(built)
    assert (summary.name, summary.versions, summary.latest, summary.item_count) == ("support", 1, 1, 36)
    assert list_sets(built / "nowhere") == []
    tool_id = item_id_for(tool_item()["input"], tool_item()["tools"])
    found = find_item(version, tool_id[:6])
    assert found.provenance.trace_ids == ["trace-tool"] and found.expected_tool_calls
    assert parse_ref("support") == ("support", None)
    assert parse_ref("support@v3") == ("support", 3) == parse_ref("support@3")
    assert parse_ref("support@latest") == ("support", None)


@pytest.mark.parametrize("ref", ["", "../etc", ".hidden", "a/b", "x@v0", "x@vv", "x@-1"])
def test_bad_refs_are_validation_errors(ref: str) -> None:
    with pytest.raises(ValidationError):
        parse_ref(ref)


def test_unknown_set_and_version_are_not_found(built: Path) -> None:
    with pytest.raises(NotFoundError, match="golden set 'nope' not found"):
        load_version(built, "nope")
    with pytest.raises(NotFoundError, match=r"has no v7 \(versions: v1\)"):
        load_version(built, "support", 7)
    with pytest.raises(NotFoundError):
        diff(built, "support", 1, 2)
    with pytest.raises(NotFoundError):
        verify(built, "nope")
    with pytest.raises(NotFoundError, match="no item"):
        find_item(load_version(built, "support"), "ffffffffff")


# --- bad input to build ------------------------------------------------------------------------


def test_empty_set_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(GoldenSetError, match="no items"):
        build_version(tmp_path, "empty", [], tool_version=TOOL)
    assert not (tmp_path / "golden_sets" / "empty" / "manifest.json").exists()
    assert list((tmp_path / "golden_sets" / "empty").iterdir()) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"expected_output": "x"}, r"item 1: input: Field required"),
        ({"input": []}, r"item 1: input: at least one message"),
        ({"input": [{"content": "no role"}]}, r"item 1: input\[0\]: message has no 'role'"),
        ({"input": [{"role": "user", "content": "q"}], "id": "deadbeef"}, r"item 1: id 'deadbeef' does not match"),
        ({"input": [{"role": "user", "content": "q"}], "colour": "red"}, r"item 1: colour: Extra inputs"),
        ("not a dict", r"item 1: expected a mapping"),
    ],
)
def test_bad_items_name_position_and_field(tmp_path: Path, bad: object, message: str) -> None:
    good = {"input": [{"role": "user", "content": "fine"}]}
    with pytest.raises(ValidationError, match=message):
        build_version(tmp_path, "s", [good, bad], tool_version=TOOL)
    assert not (tmp_path / "golden_sets" / "s" / "manifest.json").exists()


def test_duplicate_inputs_are_rejected(tmp_path: Path) -> None:
    item = {"input": [{"role": "user", "content": "same"}], "expected_output": "a"}
    with pytest.raises(GoldenSetError, match="items 0 and 1 have the same input"):
        build_version(tmp_path, "s", [item, {**item, "expected_output": "b"}], tool_version=TOOL)


def test_bad_name_and_unwritable_root(tmp_path: Path, items: list[dict]) -> None:
    with pytest.raises(ValidationError, match="golden set name"):
        build_version(tmp_path, "../escape", items, tool_version=TOOL)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(GoldenSetError, match="cannot create"):
        build_version(blocker, "s", items, tool_version=TOOL)


def test_corrupt_manifest_is_reported_with_its_path(built: Path) -> None:
    manifest = built / "golden_sets" / "support" / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(GoldenSetError, match=r"manifest\.json: not valid JSON"):
        load_version(built, "support")
    manifest.write_text(json.dumps({"name": "support", "versions": [{"version": 1}]}))
    with pytest.raises(GoldenSetError, match=r"versions\.0\.file: Field required"):
        load_version(built, "support")


# --- verify ----------------------------------------------------------------------------------


def edit_lines(path: Path, edit) -> list[str]:
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    new = edit(list(lines))
    path.write_text("".join(line + "\n" for line in new), encoding="utf-8")
    return lines


def test_verify_clean_set(built: Path) -> None:
    report = verify(built, "support")
    assert report.ok and report.checked == [1]
    report.raise_for_problems()


def test_verify_catches_a_modified_line(built: Path) -> None:
    def tamper(lines: list[str]) -> list[str]:
        row = json.loads(lines[2])
        row["expected_output"] += " (quietly edited)"
        lines[2] = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return lines

    original = edit_lines(set_file(built), tamper)
    report = verify(built, "support")
    [problem] = report.problems
    assert (problem.kind, problem.line, problem.item_id) == ("modified", 3, json.loads(original[2])["id"])
    assert "v1.jsonl:3" in problem.message
    with pytest.raises(GoldenSetError, match=r"v1\.jsonl:3: item .* was modified"):
        report.raise_for_problems()
    with pytest.raises(GoldenSetError, match="does not match manifest hash"):
        load_version(built, "support")
    assert len(load_version(built, "support", check=False).items) == 36


def test_verify_catches_removed_added_duplicated_and_reordered_lines(built: Path) -> None:
    extra = GoldenItem(input=[{"role": "user", "content": "smuggled in"}], expected_output="x")
    extra_line = json.dumps(extra.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    original = edit_lines(set_file(built), lambda ls: [ls[0], *ls[2:], ls[3], extra_line])
    removed_id = json.loads(original[1])["id"]
    kinds = {(p.kind, p.item_id) for p in verify(built, "support").problems}
    assert kinds == {("removed", removed_id), ("duplicate", json.loads(original[3])["id"]), ("added", extra.id)}

    edit_lines(set_file(built), lambda _: [original[1], original[0], *original[2:]])
    [problem] = verify(built, "support").problems
    assert problem.kind == "out_of_order" and problem.line == 2


def test_verify_garbage_line_and_file_level_changes(built: Path) -> None:
    original = edit_lines(set_file(built), lambda ls: [ls[0], "{garbage", *ls[2:]])
    [problem] = verify(built, "support").problems
    assert (problem.kind, problem.line, problem.item_id) == ("modified", 2, json.loads(original[1])["id"])
    assert "no longer parses" in problem.message

    set_file(built).write_text("\n".join(original), encoding="utf-8")  # final newline dropped
    assert [p.kind for p in verify(built, "support").problems] == ["file_hash"]

    set_file(built).write_text("".join(line + "\r\n" for line in original), encoding="utf-8")
    assert {p.kind for p in verify(built, "support").problems} == {"modified"}

    set_file(built).unlink()
    (built / "golden_sets" / "support" / "v9.jsonl").write_text("{}\n")
    assert sorted(p.kind for p in verify(built, "support").problems) == ["missing_file", "untracked"]
    with pytest.raises(GoldenSetError, match="is missing"):
        load_version(built, "support")


def test_verify_checks_every_version(built: Path, items: list[dict]) -> None:
    build_version(built, "support", items[:10], tool_version=TOOL)
    edit_lines(set_file(built, 1), lambda ls: ls[:-1])
    report = verify(built, "support")
    assert report.checked == [1, 2]
    assert [(p.version, p.kind) for p in report.problems] == [(1, "removed")]
    assert verify(built, "support", "v2").ok


# --- atomic writes ---------------------------------------------------------------------------


def test_atomic_write_leaves_old_file_and_no_temp_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write(b"partial line without end")
        raise RuntimeError("serializer blew up")
    assert target.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    fresh = tmp_path / "fresh.jsonl"
    with atomic_write(fresh) as handle:
        handle.write(b"whole\n")
    assert fresh.read_bytes() == b"whole\n" and fresh.stat().st_mode & 0o777 == 0o600  # owner only (item 13)


# --- split and leakage -----------------------------------------------------------------------


def synthetic(n: int, prefix: str = "question") -> list[GoldenItem]:
    return [GoldenItem(input=[{"role": "user", "content": f"{prefix} number {i} " + "x" * (i % 7)}]) for i in range(n)]


def test_split_is_deterministic_and_stable_under_growth() -> None:
    items = synthetic(2000)
    first = split_items(items, test_fraction=0.2)
    again = split_items(list(reversed(items)), test_fraction=0.2)
    assert [i.id for i in first.test] == [i.id for i in again.test]
    subset = split_items(items[:300], test_fraction=0.2)
    test_ids = {i.id for i in first.test}
    assert {i.id for i in subset.test} == {i.id for i in items[:300]} & test_ids
    assert binomtest(len(first.test), 2000, 0.2).pvalue > 1e-3  # share is consistent with 20%
    salted = split_items(items, test_fraction=0.2, salt="other")
    assert {i.id for i in salted.test} != test_ids


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 2])
def test_bad_test_fraction(fraction: float) -> None:
    with pytest.raises(ValidationError, match="test_fraction"):
        split_items(synthetic(3), test_fraction=fraction)


def test_leakage_flags_near_duplicates_across_the_split() -> None:
    real = [GoldenItem.model_validate(item) for item in oasst_items()]
    split = split_items(real, test_fraction=0.3)
    assert split.test and split.train
    assert leakage_check(split) == []  # the real prompts are distinct
    victim = next(item for item in split.test if len(item.input) == 2)  # system + one user turn
    question = victim.input[1]["content"]
    # Reworded copies (case, punctuation, word order) until one lands in train.
    variants = [question.upper() + suffix for suffix in ("!", "?!", " ...", " !!", ".", "  ?")]
    variants.append(" ".join(reversed(question.split())))
    planted = [GoldenItem(input=[victim.input[0], {"role": "user", "content": v}]) for v in variants]
    grown = split_items([*real, *planted], test_fraction=0.3)
    in_train = {i.id for i in grown.train} & {p.id for p in planted}
    assert in_train, "no reworded copy landed in train"
    leaks = leakage_check(grown)
    assert {(leak.test_id, leak.train_id) for leak in leaks if leak.test_id == victim.id} >= {
        (victim.id, train_id) for train_id in in_train
    }
    assert all(leak.score >= 90 for leak in leaks)
    cleaned = resolve_leaks(grown)
    assert leakage_check(cleaned) == [] and victim.id in {i.id for i in cleaned.train}
    assert len(cleaned.train) + len(cleaned.test) == len(real) + len(planted)


def test_leakage_matches_brute_force_across_chunks() -> None:
    rng = random.Random(3)
    words = ["refund", "order", "late", "broken", "password", "reset", "invoice", "help", "account", "ship"]
    test = [GoldenItem(input=[{"role": "user", "content": " ".join(rng.choices(words, k=5))}]) for _ in range(600)]
    train = [
        GoldenItem(input=[{"role": "user", "content": " ".join(rng.choices(words, k=5)) + " pls"}]) for _ in range(40)
    ]
    split = Split(train=train, test=list({i.id: i for i in test}.values()))
    found = {(leak.test_id, leak.train_id) for leak in leakage_check(split, threshold=85)}
    expected = {
        (t.id, r.id)
        for t in split.test
        for r in split.train
        if fuzz.token_sort_ratio(t.prompt_text, r.prompt_text, processor=utils.default_process) >= 85
    }
    assert found == expected and expected


def test_leakage_ignores_shared_system_prompts_and_bad_threshold() -> None:
    system = {"role": "system", "content": "You are the ACME support bot. " * 40}
    a = GoldenItem(input=[system, {"role": "user", "content": "How do I reset my password?"}])
    b = GoldenItem(input=[system, {"role": "user", "content": "Where is my parcel from last week?"}])
    assert leakage_check(Split(train=[a], test=[b])) == []
    with pytest.raises(ValidationError, match="threshold"):
        leakage_check(Split(train=[a], test=[b]), threshold=0)
