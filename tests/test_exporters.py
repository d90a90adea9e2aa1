"""Every export format round-trips; bad paths fail cleanly and leave no partial file."""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from tests.golden_data import oasst_items, tool_item
from workbench.errors import ConfigError, ExportError, GoldenSetError, ValidationError
from workbench.golden import GoldenItem, GoldenVersion, build_version, export, load_version, split_items
from workbench.golden.atomic import sha256_tree
from workbench.golden.exporters import EXPORTERS, estimate_tokens, read_csv, validate_chat_example
from workbench.golden.exporters import csv as csv_exporter
from workbench.golden.exporters.hf import item_from_row, manifest_from_info
from workbench.golden.exporters.langfuse import dataset_item_id
from workbench.golden.split import split_bucket

TOOL = "workbench 0.1.0-test"
FILE_FORMATS = ["openai-chat", "openai-preference", "trl-dpo", "csv"]


def offline(fmt: str) -> dict[str, Any]:
    """Token counting by estimate, so tests never load tiktoken's encoding files (a download)."""
    return {"count_tokens": estimate_tokens} if fmt == "openai-chat" else {}


def extra_items() -> list[dict[str, Any]]:
    """Edge cases next to the real conversations: tools, no answer, same answer, spreadsheet formulas."""
    extras = [
        tool_item(),
        {"input": [{"role": "user", "content": "Eval-only question, no reference answer"}], "original_output": "meh"},
        {
            "input": [{"role": "user", "content": "Accepted as it was"}],
            "expected_output": "Same text",
            "original_output": "Same text",
        },
        {
            "input": [{"role": "user", "content": '=HYPERLINK("http://evil","click")'}],
            "expected_output": "'quoted' answer",
            "original_output": "-1 is wrong",
            "notes": "@mention\nsecond line",
            "labels": ["csv", "formula"],
        },
    ]
    for n, item in enumerate(extras[1:], start=1):
        item["provenance"] = {"candidate_id": f"cand-x{n}", "trace_ids": [f"trace-x{n}"], "feedback_ids": [f"fb-x{n}"]}
    return extras


@pytest.fixture
def version(tmp_path: Path) -> GoldenVersion:
    build_version(tmp_path, "support", [*oasst_items(), *extra_items()], tool_version=TOOL)
    return load_version(tmp_path, "support")


def by_id(version: GoldenVersion) -> dict[str, GoldenItem]:
    return {item.id: item for item in version.items}


def jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def check_result(result, path: Path, version: GoldenVersion) -> None:
    assert result.path == str(path)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.item_count + result.skipped_count == len(version.items)
    assert (result.golden_set, result.version) == ("support", 1)
    assert result.source_sha256 == hashlib.sha256(version.path.read_bytes()).hexdigest()


# --- openai-chat -----------------------------------------------------------------------------


def test_openai_chat_round_trip(version: GoldenVersion, tmp_path: Path) -> None:
    out = tmp_path / "chat.jsonl"
    result = export(version, "openai-chat", out, count_tokens=estimate_tokens)
    check_result(result, out, version)
    rows = jsonl(out)
    items = by_id(version)
    with_answer = [item for item in version.items if item.expected_output or item.expected_tool_calls]
    assert len(rows) == result.item_count == len(with_answer) == len(version.items) - 1
    assert [s.reason for s in result.skipped] == ["no expected output"]
    for row, item_id in zip(rows, result.item_ids, strict=True):
        item = items[item_id]
        assert validate_chat_example(row) == []
        *history, final = row["messages"]
        assert [m["role"] for m in history] == [m["role"] for m in item.input]
        assert [m.get("content") for m in history] == [m.get("content") for m in item.input]
        assert all(m.get("weight") == 0 for m in history if m["role"] == "assistant")
        assert final.get("content") == item.expected_output and "weight" not in final
        assert item.provenance.trace_ids  # each row leads back to its traces through item_ids
    tool = items[result.item_ids[[r.get("tools") is not None for r in rows].index(True)]]
    tool_row = rows[result.item_ids.index(tool.id)]
    assert tool_row["tools"] == tool.tools
    assert tool_row["messages"][-1] == {"role": "assistant", "tool_calls": tool.expected_tool_calls}
    assert tool_row["messages"][1] == {"role": "assistant", "tool_calls": tool.input[1]["tool_calls"], "weight": 0}
    assert tool_row["messages"][2] == tool.input[2]
    assert result.stats["token_counter"] == "custom" and result.stats["over_limit"] == 0


def test_openai_chat_token_limit_warning_and_history_training(version: GoldenVersion, tmp_path: Path) -> None:
    out = tmp_path / "chat.jsonl"
    result = export(
        version, "openai-chat", out, max_tokens_per_example=400, count_tokens=estimate_tokens, train_on_history=True
    )
    rows = jsonl(out)
    assert not any("weight" in m for row in rows for m in row["messages"])
    # Independent lower bound: an example is at least its characters / 4 tokens.
    long_rows = [i for i, row in enumerate(rows) if sum(len(m.get("content") or "") for m in row["messages"]) / 4 > 400]
    assert long_rows and result.stats["over_limit"] >= len(long_rows)
    limit_warnings = [w for w in result.warnings if "exceeds the 400-token limit" in w]
    assert len(limit_warnings) == result.stats["over_limit"]
    assert all(result.item_ids[i] in " ".join(limit_warnings) for i in long_rows)
    assert len(rows) == result.item_count  # over-limit examples are kept, only warned about


@pytest.mark.parametrize(
    ("example", "error"),
    [
        ({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}, "role 'robot'"),
        ({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "y"}]}, "empty content"),
        ({"messages": [{"role": "user", "content": "x"}]}, "no assistant message"),
        (
            {"messages": [{"role": "user", "content": "x", "colour": 1}, {"role": "assistant", "content": "y"}]},
            "unrecognized key(s) colour",
        ),
        (
            {"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]},
            "needs 'tool_call_id'",
        ),
        (
            {"messages": [{"role": "user", "content": "x", "weight": 0}, {"role": "assistant", "content": "y"}]},
            "weight must be 0 or 1",
        ),
        ({"messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]}, "needs 'id' and 'function'"),
        ({"messages": []}, "missing 'messages' list"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_chat_validation_errors(example: Any, error: str) -> None:
    errors = validate_chat_example(example)
    assert any(error in e for e in errors), errors


def test_invalid_examples_are_skipped_with_reason(tmp_path: Path) -> None:
    good = [{"input": [{"role": "user", "content": f"q{i}"}], "expected_output": "a"} for i in range(3)]
    bad = {
        "input": [{"role": "developer", "content": "rules"}, {"role": "user", "content": "q"}],
        "expected_output": "a",
    }
    result = export([*good, bad], "openai-chat", tmp_path / "x.jsonl", count_tokens=estimate_tokens)
    assert result.item_count == 3 and result.skipped_count == 1
    assert "role 'developer'" in result.skipped[0].reason
    assert any("at least 10" in w for w in result.warnings)
    assert result.golden_set is None
    with pytest.raises(GoldenSetError, match="only exports of a stored"):
        result.to_record()


# --- preference formats ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai-preference", "trl-dpo"])
def test_preference_round_trip(fmt: str, version: GoldenVersion, tmp_path: Path) -> None:
    out = tmp_path / f"{fmt}.jsonl"
    result = export(version, fmt, out)
    check_result(result, out, version)
    rows = jsonl(out)
    items = by_id(version)
    assert sorted(s.reason for s in result.skipped) == [
        "chosen and rejected are the same text",
        "no chosen answer (expected output)",
    ]
    assert len(rows) == len(version.items) - 2
    for row, item_id in zip(rows, result.item_ids, strict=True):
        item = items[item_id]
        if fmt == "openai-preference":
            assert set(row) == {"input", "preferred_output", "non_preferred_output"}
            prompt, chosen, rejected = row["input"]["messages"], row["preferred_output"], row["non_preferred_output"]
            assert row["input"].get("tools") == item.tools
        else:
            assert set(row) == {"prompt", "chosen", "rejected"}
            prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
        assert [(m["role"], m.get("content")) for m in prompt] == [(m["role"], m.get("content")) for m in item.input]
        assert len(chosen) == len(rejected) == 1
        assert chosen[0]["role"] == rejected[0]["role"] == "assistant"
        assert chosen[0].get("content") == item.expected_output
        assert chosen[0].get("tool_calls") == item.expected_tool_calls
        assert rejected[0]["content"] == item.original_output


def test_trl_file_loads_with_datasets(version: GoldenVersion, tmp_path: Path) -> None:
    from datasets import load_dataset

    out = tmp_path / "dpo.jsonl"
    result = export([i for i in version.items if not i.tools], "trl-dpo", out)
    loaded = load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.column_names == ["prompt", "chosen", "rejected"] and len(loaded) == result.item_count
    assert loaded[0]["rejected"][0]["role"] == "assistant"


def test_preference_with_no_pairs_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    only_expected = [{"input": [{"role": "user", "content": "q"}], "expected_output": "a"}]
    with pytest.raises(GoldenSetError, match=r"no items exportable as trl-dpo \(1 skipped: no rejected answer"):
        export(only_expected, "trl-dpo", out)
    assert list(tmp_path.iterdir()) == []


# --- hf ----------------------------------------------------------------------------------------


def test_hf_round_trip_with_split_and_manifest(version: GoldenVersion, tmp_path: Path) -> None:
    from datasets import DatasetDict, load_from_disk

    out = tmp_path / "hf"
    result = export(version, "hf", out, test_fraction=0.25)
    loaded = load_from_disk(str(out))
    assert isinstance(loaded, DatasetDict) and set(loaded) == {"train", "test"}
    expected = split_items(version.items, test_fraction=0.25)
    for name, part in (("train", expected.train), ("test", expected.test)):
        rebuilt = [item_from_row(row) for row in loaded[name]]
        assert rebuilt == part  # every field, provenance included, survives the round trip
        assert loaded[name]["id"] == [item.id for item in part]
        manifest = manifest_from_info(loaded[name].info)
        assert manifest["manifest"] == {"name": "support", **version.info.model_dump(mode="json")}
        assert manifest["split"]["test_fraction"] == 0.25
    assert loaded["train"][0]["input"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert result.item_count == len(version.items) and result.sha256 == sha256_tree(out)
    assert result.stats == {"train": len(expected.train), "test": len(expected.test)}
    again = export(version, "hf", out, test_fraction=None)  # replaces the earlier export
    single = load_from_disk(str(out))
    assert len(single) == len(version.items) and again.sha256 != result.sha256
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".wbtmp")] == []


def test_hf_warns_about_leakage_and_can_fix_it(tmp_path: Path) -> None:
    from datasets import load_from_disk

    base = [GoldenItem.model_validate(i) for i in oasst_items()]
    test_item = next(i for i in split_items(base, test_fraction=0.3).test if len(i.input) == 2)
    text = test_item.input[1]["content"]
    copies = [GoldenItem(input=[{"role": "user", "content": text + "!" * n}]) for n in range(1, 8)]
    result = export([*base, *copies], "hf", tmp_path / "leaky", test_fraction=0.3)
    assert any(w.startswith("leakage:") for w in result.warnings)
    fixed = export([*base, *copies], "hf", tmp_path / "fixed", test_fraction=0.3, move_leaks_to_train=True)
    assert any(w.startswith("moved ") for w in fixed.warnings)
    train_ids = set(load_from_disk(str(tmp_path / "fixed"))["train"]["id"])
    assert test_item.id in train_ids


def test_hf_tiny_set_has_an_empty_but_loadable_test_split(tmp_path: Path) -> None:
    from datasets import load_from_disk

    one = GoldenItem(input=[{"role": "user", "content": "only one"}], expected_output="a")
    fraction = split_bucket(one.id) / 2  # below the item's bucket: it must land in train
    result = export([one], "hf", tmp_path / "tiny", test_fraction=fraction)
    loaded = load_from_disk(str(tmp_path / "tiny"))
    assert (len(loaded["train"]), len(loaded["test"])) == (1, 0)
    assert loaded["test"].column_names == loaded["train"].column_names
    assert any("test split is empty" in w for w in result.warnings)


def test_hf_refuses_to_replace_a_directory_that_is_not_an_export(version: GoldenVersion, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an earlier export"):
        export(version, "hf", precious)
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden_sets", "precious"]


# --- csv ---------------------------------------------------------------------------------------


def test_csv_round_trip_and_formula_escaping(version: GoldenVersion, tmp_path: Path) -> None:
    out = tmp_path / "set.csv"
    result = export(version, "csv", out)
    check_result(result, out, version)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(out, encoding="utf-8-sig", newline="") as handle:  # stdlib csv as the oracle
        plain = list(csv.DictReader(handle))
    assert len(plain) == len(version.items) and list(plain[0]) == csv_exporter.COLUMNS
    formula = next(r for r in plain if "HYPERLINK" in r["conversation"])
    assert formula["notes"].startswith("'@") and formula["original_output"].startswith("'-1")
    assert formula["expected_output"] == "''quoted' answer"
    assert all(not v.startswith(("=", "+", "-", "@")) for row in plain for v in row.values())
    rebuilt = [csv_exporter.item_from_row(row) for row in read_csv(out)]
    assert rebuilt == version.items


# --- langfuse ----------------------------------------------------------------------------------


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fail any socket connection that is not to this machine (OTel exporters, cloud defaults...)."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            attempts.append(address)
            raise OSError(f"test blocked a connection to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


@pytest.fixture
def langfuse_server(httpserver: Any) -> list[tuple[str, dict[str, Any], str]]:
    recorded: list[tuple[str, dict[str, Any], str]] = []
    stamp = "2025-01-01T00:00:00Z"

    def datasets(request: Request) -> Response:
        body = request.get_json()
        recorded.append((request.path, body, request.headers.get("Authorization", "")))
        return Response(
            json.dumps(
                {
                    "id": "ds-1",
                    "name": body["name"],
                    "description": body.get("description"),
                    "metadata": body.get("metadata"),
                    "projectId": "p-1",
                    "createdAt": stamp,
                    "updatedAt": stamp,
                }
            ),
            content_type="application/json",
        )

    def items(request: Request) -> Response:
        body = request.get_json()
        recorded.append((request.path, body, request.headers.get("Authorization", "")))
        if body["input"]["messages"][-1].get("content") == "FAIL ME":
            return Response(json.dumps({"message": "rejected"}), status=400, content_type="application/json")
        return Response(
            json.dumps(
                {
                    **body,
                    "status": "ACTIVE",
                    "datasetId": "ds-1",
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "mediaReferences": [],
                }
            ),
            content_type="application/json",
        )

    httpserver.expect_request("/api/public/v2/datasets", method="POST").respond_with_handler(datasets)
    httpserver.expect_request("/api/public/dataset-items", method="POST").respond_with_handler(items)
    return recorded


def test_langfuse_export_sends_items_with_source_trace_ids(
    version: GoldenVersion, httpserver: Any, langfuse_server: list, no_internet: list
) -> None:
    base = httpserver.url_for("/").rstrip("/")
    result = export(version, "langfuse", None, base_url=base, public_key="pk-test", secret_key="sk-test")
    assert no_internet == []
    (path, dataset, auth), *item_calls = langfuse_server
    assert path == "/api/public/v2/datasets" and dataset["name"] == "support-v1"
    assert dataset["metadata"]["file_sha256"] == version.info.file_sha256
    assert auth.startswith("Basic ")
    assert len(item_calls) == len(version.items) == result.item_count
    items = by_id(version)
    for (item_path, body, _), item_id in zip(item_calls, result.item_ids, strict=True):
        item = items[item_id]
        assert item_path == "/api/public/dataset-items" and body["datasetName"] == "support-v1"
        assert body["id"] == dataset_item_id("support-v1", item.id)
        assert body["sourceTraceId"] == item.provenance.trace_ids[0]
        assert body["input"]["messages"] == item.input
        assert body["metadata"]["golden_item_id"] == item.id
        assert body["metadata"]["feedback_ids"] == item.provenance.feedback_ids
        if item.expected_tool_calls:
            assert body["expectedOutput"]["tool_calls"] == item.expected_tool_calls
        else:
            assert body["expectedOutput"] == item.expected_output
    assert result.stats == {"dataset_name": "support-v1", "dataset_id": "ds-1"}
    assert result.to_record().file_hash == version.info.file_sha256


def test_langfuse_client_object_is_accepted(
    version: GoldenVersion, httpserver: Any, langfuse_server: list, no_internet: list
) -> None:
    from langfuse import Langfuse

    client = Langfuse(
        public_key="pk-obj", secret_key="sk-obj", base_url=httpserver.url_for("/").rstrip("/"), tracing_enabled=False
    )
    try:
        result = export(version.items[:3], "langfuse", "adhoc", api=client)
    finally:
        client.shutdown()
    assert no_internet == []
    assert [body["datasetName"] for _, body, _ in langfuse_server[1:]] == ["adhoc"] * 3
    assert result.item_count == 3


def test_langfuse_failure_names_progress(httpserver: Any, langfuse_server: list, no_internet: list) -> None:
    items = [{"input": [{"role": "user", "content": c}], "expected_output": "a"} for c in ("ok", "ok 2", "FAIL ME")]
    base = httpserver.url_for("/").rstrip("/")
    with pytest.raises(ExportError, match=r"failed after \d of 3 items.*re-running is safe"):
        export(items, "langfuse", "ds", base_url=base, public_key="pk", secret_key="sk")


def test_langfuse_needs_credentials_and_a_name(monkeypatch: pytest.MonkeyPatch, version: GoldenVersion) -> None:
    for name in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="LANGFUSE_PUBLIC_KEY"):
        export(version, "langfuse", None, base_url="http://127.0.0.1:9")
    with pytest.raises(ValidationError, match="needs a dataset name"):
        export(version.items, "langfuse", None, public_key="pk", secret_key="sk", base_url="http://127.0.0.1:9")


# --- registry, log record and bad input --------------------------------------------------------


def test_registry_and_export_log_callback(version: GoldenVersion, tmp_path: Path) -> None:
    assert set(EXPORTERS) == {
        "openai-chat",
        "openai-preference",
        "trl-dpo",
        "hf",
        "langfuse",
        "csv",
        "trl-sft",
        "trl-kto",
        "anthropic-bedrock",
        "together-chat",
        "sharegpt",
    }
    seen = []
    result = export(version, "csv", tmp_path / "a.csv", on_export=seen.append)
    assert seen == [result]
    record = result.to_record("exp-1")
    assert (record.id, record.golden_set, record.version, record.format) == ("exp-1", "support", 1, "csv")
    assert record.file_hash == version.info.file_sha256 and record.item_count == len(version.items)
    assert record.feedback_ids == sorted({f for i in version.items for f in i.provenance.feedback_ids})
    with pytest.raises(ValidationError, match="unknown export format 'parquet'"):
        export(version, "parquet", tmp_path / "x")
    with pytest.raises(ValidationError, match="unexpected keyword argument"):
        export(version, "csv", tmp_path / "x.csv", colour="red")
    with pytest.raises(ValidationError, match="needs an output path"):
        export(version, "csv", None)


@pytest.mark.parametrize("fmt", [*FILE_FORMATS, "hf"])
def test_empty_set_is_an_error(fmt: str, tmp_path: Path) -> None:
    with pytest.raises(GoldenSetError, match="empty"):
        export([], fmt, tmp_path / "out", **offline(fmt))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", [*FILE_FORMATS, "hf"])
def test_unwritable_paths_fail_cleanly(fmt: str, version: GoldenVersion, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ExportError, match="is not a directory"):
        export(version, fmt, blocker / "out", **offline(fmt))
    with pytest.raises(ExportError, match="does not exist"):
        export(version, fmt, tmp_path / "missing" / "out", **offline(fmt))
    if fmt != "hf":
        target_dir = tmp_path / "a-dir"
        target_dir.mkdir()
        with pytest.raises(ExportError, match="is a directory"):
            export(version, fmt, target_dir, **offline(fmt))
        target_dir.rmdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert blocker.read_text() == "x"


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody can create files in: chmod for users, ``chattr +i`` for root."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.name == "posix" and os.geteuid() == 0:
        if (
            shutil.which("chattr") is None
            or subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode
        ):
            pytest.skip("running as root and chattr +i is not available here")
        yield locked
        subprocess.run(["chattr", "-i", str(locked)], check=True)
        return
    locked.chmod(0o500)
    yield locked
    locked.chmod(0o700)


@pytest.mark.parametrize("fmt", [*FILE_FORMATS, "hf"])
def test_read_only_directory(fmt: str, version: GoldenVersion, read_only_dir: Path) -> None:
    with pytest.raises(ExportError, match=r"cannot write .*locked/out"):
        export(version, fmt, read_only_dir / "out", **offline(fmt))
    assert list(read_only_dir.iterdir()) == []


def test_failed_export_keeps_the_previous_file(version: GoldenVersion, tmp_path: Path) -> None:
    out = tmp_path / "chat.jsonl"
    export(version, "openai-chat", out, count_tokens=estimate_tokens)
    before = out.read_bytes()
    no_answers = [{"input": [{"role": "user", "content": "q"}]}]
    with pytest.raises(GoldenSetError, match="no items exportable as openai-chat"):
        export(no_answers, "openai-chat", out, count_tokens=estimate_tokens)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.jsonl", "golden_sets"]
