"""The demo runs end to end (no network) and leaves a store, a golden set and exports behind."""

from __future__ import annotations

import json

from datasets import load_from_disk

from .conftest import run_cli


def test_demo_end_to_end(tmp_path):
    result = run_cli("demo", "--dir", "demo", "--sessions", "60", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["traces"] > 300 and summary["votes"] > 100
    for signal in ("repeat_ask", "regenerate", "pushback", "abandon", "positive"):
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
    # Running it again starts fresh rather than piling onto the old store.
    again = json.loads(run_cli("demo", "--dir", "demo", "--sessions", "60", "--json", cwd=tmp_path).stdout)
    assert again["traces"] == summary["traces"]


def test_demo_refuses_a_foreign_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = run_cli("demo", "--dir", "mine", cwd=tmp_path)
    assert result.returncode == 2 and "not made by `workbench demo`" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
