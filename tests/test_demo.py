"""The demo runs end to end (no network) and leaves a store, a golden set and exports behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from datasets import load_from_disk

from .conftest import run_cli
from .test_judge_runner import FakeJudge, FakeServer


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake(fake_server: FakeServer) -> FakeJudge:
    return fake_server.fresh()


def test_demo_end_to_end(tmp_path):
    result = run_cli("demo", "--dir", "demo", "--sessions", "60", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["traces"] > 300 and summary["votes"] > 100
    # repeat_ask is not required: the default (learned) detector misses the demo's three re-asks, which also say
    # the answer failed (its re-ask recall is .26 on the frozen test split, a known miss stated in the README).
    for signal in ("regenerate", "pushback", "abandon", "positive"):
        assert summary["implicit"].get(signal, 0) > 0, signal
    assert summary["candidates"] > 0 and summary["accepted"] > 0
    assert summary["golden_items"] == summary["accepted"]
    demo = tmp_path / "demo"
    lines = (demo / "exports" / "finetune.jsonl").read_text().splitlines()
    assert len(lines) == summary["accepted"] and json.loads(lines[0])["messages"][-1]["role"] == "assistant"
    assert len(load_from_disk(str(demo / "exports" / "hf_dataset"))["train"]) > 0
    # The store the demo made is usable from its directory, like any project's.
    listed = json.loads(run_cli("candidates", "--limit", "3", "--json", cwd=demo).stdout)
    assert len(listed) == 3
    verify = run_cli("golden", "verify", "demo-support", cwd=demo)
    assert verify.returncode == 0, verify.stderr
    exports = json.loads(run_cli("exports", "--json", cwd=demo).stdout)
    assert {e["format"] for e in exports} >= {"openai-chat", "trl-dpo", "csv", "hf"}
    # Nothing was captured in the future: the demo's clock ends at "now", so mining right after the demo
    # (which mined already) finds nothing new, and the newest trace is not younger than this moment.
    listed = json.loads(run_cli("traces", "--limit", "100000", "--json", cwd=demo).stdout)
    assert len(listed) == summary["traces"]
    newest = max(datetime.fromisoformat(t["created_at"]) for t in listed)
    assert newest <= datetime.now(UTC), f"the demo captured a call dated {newest}, in the future"
    mined = run_cli("mine", "--json", cwd=demo)
    assert mined.returncode == 0, mined.stderr
    assert json.loads(mined.stdout)["added"] == 0, mined.stdout
    # Running it again starts fresh rather than piling onto the old store; the text says a script decided.
    again = run_cli("demo", "--dir", "demo", "--sessions", "60", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"captured {summary['traces']} calls" in again.stdout
    assert f"a scripted reviewer (not a person) accepted {summary['accepted']}" in " ".join(again.stdout.split())
    assert "reviewer accepted" not in again.stdout.replace("(not a person) accepted", "")


def test_calibrating_a_likert_rubric_on_the_demo_says_it_needs_ratings(tmp_path, fake):
    """The demo has thumbs, not ratings: calibrating helpfulness (1-5) names what is missing and how to add it."""
    assert run_cli("demo", "--dir", "demo", "--sessions", "20", "--json", cwd=tmp_path).returncode == 0
    demo = tmp_path / "demo"
    judged = run_cli("judge", "run", "--rubric", "helpfulness", "--base-url", fake.url, "--limit", "12", cwd=demo)
    assert judged.returncode == 0, judged.stderr
    result = run_cli("judge", "calibrate", "--rubric", "helpfulness", cwd=demo)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "calibrated against user ratings and 0 of 12 judged traces have one" in lines[0]
    assert "have thumbs, which only binary rubrics use" in lines[0]
    assert "workbench feedback add TRACE_ID --rating 4" in lines[0]


def test_demo_refuses_a_foreign_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = run_cli("demo", "--dir", "mine", cwd=tmp_path)
    assert result.returncode == 2 and "not made by `workbench demo`" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
