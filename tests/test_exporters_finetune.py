"""trl-sft, trl-kto, anthropic-bedrock, together-chat, sharegpt: each file is loaded the way its consumer
loads it (``datasets``' JSON loader; TRL's own dataset functions and a real chat template where TRL is
installed; the documented Bedrock rules) on real Open-Assistant conversations plus edge cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.golden_data import oasst_items, tool_item
from workbench.errors import ExportError, GoldenSetError
from workbench.golden import GoldenVersion, build_version, export, load_version
from workbench.golden.exporters import EXPORTERS

NEW_FORMATS = ["trl-sft", "trl-kto", "anthropic-bedrock", "together-chat", "sharegpt"]
CHATML = (
    "{% if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] %}{{ m['content'] }}{% endif %}"
    "{% if m['tool_calls'] %}{% for c in m['tool_calls'] %}<tool_call>{{ c['function']['name'] }} "
    "{{ c['function']['arguments'] | tojson }}</tool_call>{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def edge_items() -> list[dict[str, Any]]:
    items = [
        tool_item(),
        {"input": [{"role": "user", "content": "Eval-only question"}], "original_output": "meh"},
        {
            "input": [{"role": "user", "content": "Accepted as it was"}],
            "expected_output": "Same",
            "original_output": "Same",
        },
        {
            "input": [
                {"role": "developer", "content": "Answer in French."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Capital of"}, {"type": "text", "text": "Italy?"}],
                },
                {"role": "user", "content": "Just the name."},
            ],
            "expected_output": "Rome.",
            "original_output": "Roma is the capital.",
        },
        {
            "input": [*tool_item()["input"], {"role": "user", "content": "Just Paris then."}],
            "tools": tool_item()["tools"],
            "expected_output": "Paris is 18 C; I will check Oslo next.",
        },
        {
            "input": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}],
            "expected_output": "A cat.",
        },
    ]
    for n, item in enumerate(items):
        item.setdefault(
            "provenance", {"candidate_id": f"cand-e{n}", "trace_ids": [f"t-e{n}"], "feedback_ids": [f"fb-e{n}"]}
        )
    return items


@pytest.fixture
def version(tmp_path: Path) -> GoldenVersion:
    build_version(tmp_path / "golden", "support", [*oasst_items(), *edge_items()], tool_version="test")
    return load_version(tmp_path / "golden", "support")


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


NO_TRL = "TRL is not installed (it needs torch); the datasets checks still ran"


def load_json_dataset(path: Path) -> Any:
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset("json", data_files=str(path), split="train")


def chat_tokenizer() -> Any:
    """A real transformers tokenizer with a ChatML template, built here (no download)."""
    pytest.importorskip("trl", reason=NO_TRL)
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab={"[UNK]": 0}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", eos_token="[UNK]")
    tokenizer.chat_template = CHATML
    return tokenizer


def test_new_formats_are_registered():
    assert set(NEW_FORMATS) <= set(EXPORTERS)


def test_trl_sft_loads_in_datasets_and_renders_with_trl(version: GoldenVersion, tmp_path: Path):
    out = tmp_path / "sft.jsonl"
    result = export(version, "trl-sft", out)
    rows = jsonl(out)
    skipped = {s.id: s.reason for s in result.skipped}
    assert len(rows) == result.item_count and result.item_count + result.skipped_count == len(version.items)
    assert "no expected output" in skipped.values()  # the eval-only item
    assert all(row["messages"][-1]["role"] == "assistant" for row in rows)
    assert all("weight" not in m for row in rows for m in row["messages"])
    tool_row = next(row for row in rows if row.get("tools"))
    call = tool_row["messages"][-1]["tool_calls"][0]
    assert call["function"]["arguments"] == {"city": "Oslo"}  # an object, as chat templates expect
    joined = next(row for row in rows if row["messages"][-1].get("content") == "Rome.")
    assert joined["messages"][0] == {"role": "system", "content": "Answer in French."}  # developer -> system
    assert joined["messages"][1] == {"role": "user", "content": "Capital of Italy?"}  # text parts -> one string
    dataset = load_json_dataset(out)
    assert dataset.num_rows == len(rows) and set(dataset.column_names) == {"messages", "tools"}

    pytest.importorskip("trl", reason=NO_TRL)
    from trl.data_utils import apply_chat_template, is_conversational

    tokenizer = chat_tokenizer()
    for row in rows:
        example = {k: v for k, v in row.items() if v is not None}
        assert is_conversational(example)
        text = apply_chat_template(example, tokenizer, tools=example.get("tools"))["text"]
        last = row["messages"][-1]
        assert text.rstrip().endswith("<|im_end|>") and (last.get("content") or "get_weather") in text
    rendered = apply_chat_template(tool_row, tokenizer, tools=tool_row["tools"])["text"]
    assert '<tool_call>get_weather {"city": "Oslo"}</tool_call>' in rendered


def test_trl_kto_rows_and_trl_agrees_with_unpairing_the_dpo_export(version: GoldenVersion, tmp_path: Path):
    out = tmp_path / "kto.jsonl"
    result = export(version, "trl-kto", out)
    rows = jsonl(out)
    assert len(rows) == result.item_count == len(result.item_ids)
    assert result.stats == {
        "desirable": sum(r["label"] for r in rows),
        "undesirable": sum(not r["label"] for r in rows),
    }
    assert result.stats["desirable"] > 0 and result.stats["undesirable"] > 0
    by_prompt: dict[str, list[bool]] = {}
    for row in rows:
        assert set(row) == {"prompt", "completion", "label"} and row["completion"][0]["role"] == "assistant"
        by_prompt.setdefault(json.dumps(row["prompt"], sort_keys=True), []).append(row["label"])
    assert by_prompt[json.dumps([{"role": "user", "content": "Eval-only question"}], sort_keys=True)] == [False]
    assert by_prompt[json.dumps([{"role": "user", "content": "Accepted as it was"}], sort_keys=True)] == [
        True
    ]  # same text: no pair
    dataset = load_json_dataset(out)
    assert dataset.features["label"].dtype == "bool"

    from datasets import Dataset

    pytest.importorskip("trl", reason=NO_TRL)
    from trl.data_utils import apply_chat_template, unpair_preference_dataset

    dpo = tmp_path / "dpo.jsonl"
    export(version, "trl-dpo", dpo)
    unpaired = unpair_preference_dataset(Dataset.from_list(jsonl(dpo)))

    def key(row: dict[str, Any]) -> tuple[str, str, bool]:  # Arrow adds the other rows' keys as nulls: drop them
        prompt = [{k: v for k, v in m.items() if v is not None} for m in row["prompt"]]
        return json.dumps(prompt, sort_keys=True), row["completion"][0].get("content"), row["label"]

    ours = {key(r) for r in rows}
    theirs = {key(r) for r in unpaired if all(m.get("role") != "tool" for m in r["prompt"])}
    assert theirs and theirs <= ours  # every pair TRL would unpair is in the KTO file, labelled the same way
    tokenizer = chat_tokenizer()
    rendered = apply_chat_template(rows[0], tokenizer)
    assert rendered["completion"].startswith(rows[0]["completion"][0]["content"][:20])


def test_anthropic_bedrock_lines_follow_the_documented_format(version: GoldenVersion, tmp_path: Path):
    out = tmp_path / "bedrock.jsonl"
    result = export(version, "anthropic-bedrock", out)
    rows = jsonl(out)
    reasons = {s.reason for s in result.skipped}
    assert "tool turns are not supported by Bedrock fine-tuning" in reasons
    assert any("non-text content" in r for r in reasons) and "no expected text output" in reasons
    for row in rows:  # Anthropic's guide: optional string system; >= 2 messages; user first; alternate; no other keys
        assert set(row) <= {"system", "messages"} and isinstance(row.get("system", ""), str)
        messages = row["messages"]
        assert len(messages) >= 2 and messages[-1]["role"] == "assistant"
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
        assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) and m["content"] for m in messages)
    rome = next(row for row in rows if row["messages"][-1]["content"] == "Rome.")
    assert rome == {
        "system": "Answer in French.",
        "messages": [
            {"role": "user", "content": "Capital of Italy?\n\nJust the name."},
            {"role": "assistant", "content": "Rome."},
        ],
    }
    multi = [row for row in rows if len(row["messages"]) > 2]
    assert multi and all(row["system"] == "You are a helpful assistant." for row in multi)
    assert load_json_dataset(out).num_rows == len(rows)


def test_sharegpt_is_what_trl_converts_to_the_together_messages(version: GoldenVersion, tmp_path: Path):
    export(version, "together-chat", tmp_path / "together.jsonl")
    result = export(version, "sharegpt", tmp_path / "sharegpt.jsonl")
    together, sharegpt = jsonl(tmp_path / "together.jsonl"), jsonl(tmp_path / "sharegpt.jsonl")
    assert len(together) == len(sharegpt) == result.item_count
    assert all({t["from"] for t in row["conversations"]} <= {"system", "human", "gpt"} for row in sharegpt)
    assert all(row["messages"][-1]["role"] == "assistant" for row in together)
    assert "tool turns are not carried by this format" in {s.reason for s in result.skipped}
    assert load_json_dataset(tmp_path / "sharegpt.jsonl").column_names == ["conversations"]
    assert load_json_dataset(tmp_path / "together.jsonl").column_names == ["messages"]

    pytest.importorskip("trl", reason=NO_TRL)
    from trl.data_utils import is_conversational_from_value, maybe_convert_to_chatml

    roles = {"system": "system", "human": "user", "gpt": "assistant"}  # ShareGPT's names, as Axolotl maps them
    for share, messages in zip(sharegpt, together, strict=True):
        assert is_conversational_from_value(share)
        converted = maybe_convert_to_chatml(share)["messages"]
        assert [{**m, "role": roles[m["role"]]} for m in converted] == messages["messages"]


@pytest.mark.parametrize("fmt", NEW_FORMATS)
def test_empty_or_unexportable_sets_write_nothing(fmt: str, tmp_path: Path):
    with pytest.raises(GoldenSetError, match="empty"):
        export([], fmt, tmp_path / "out.jsonl")
    only_tools = [tool_item()] if fmt not in ("trl-kto",) else [{"input": [{"role": "assistant", "content": "hi"}]}]
    with pytest.raises(GoldenSetError, match=f"no items exportable as {fmt}"):
        export(
            only_tools if fmt not in ("trl-sft",) else [{"input": [{"role": "user", "content": "q"}]}],
            fmt,
            tmp_path / "o",
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", NEW_FORMATS)
def test_unwritable_path_fails_cleanly(fmt: str, version: GoldenVersion, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="is not a directory"):
        export(version, fmt, blocker / "out.jsonl")
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "golden"]


def test_cli_exports_the_new_formats_and_logs_them(sqlite_url: str, tmp_path: Path):
    from .test_golden_cli import TOOL_VERSION, make_project

    project = make_project(sqlite_url, tmp_path)
    build_version(project.cwd, "support", oasst_items(), tool_version=TOOL_VERSION)
    for fmt in NEW_FORMATS:
        out = project.ok("export", "support", "--format", fmt, "--out", f"{fmt}.jsonl", "--json")
        assert out["format"] == fmt and out["item_count"] > 0 and (tmp_path / f"{fmt}.jsonl").is_file()
    logged = project.ok("exports", "--json")
    rows = logged if isinstance(logged, list) else logged.get("exports", logged)
    assert {r["format"] for r in rows} >= set(NEW_FORMATS)
    project.fails(2, "export", "support", "--format", "trl-kto", "--out", "x.jsonl", "--salt", "s", match="--format hf")
