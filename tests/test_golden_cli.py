"""`workbench golden ...`, `workbench export`, `workbench exports` and `workbench eval` through the real
entry point (subprocess), on SQLite and PostgreSQL. Langfuse, the model under test and the judge are
local pytest-httpserver endpoints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from workbench.golden import load_manifest, load_version
from workbench.golden.atomic import sha256_tree
from workbench.golden.exporters import csv as csv_exporter
from workbench.golden.exporters import hf as hf_exporter
from workbench.golden.items import GoldenItem
from workbench.golden.service import build_from_store
from workbench.golden.sets import build_version
from workbench.store import exports as export_rows
from workbench.store import open_store
from workbench.store.candidates import record_decision
from workbench.store.judge import list_scores
from workbench.store.prompts import register_prompt
from workbench.store.traces import list_traces

from .conftest import run_cli
from .openai_fakes import chat_body
from .test_golden_store import TOOL_VERSION, World, seed

FORMATS = ("csv", "openai-chat", "openai-preference", "trl-dpo", "hf", "langfuse")


class Project:
    def __init__(self, url: str, cwd: Path, world: World) -> None:
        self.url, self.cwd, self.world = url, cwd, world

    def run(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return run_cli("--store", self.url, *args, cwd=self.cwd, env=env)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Any:
        result = self.run(*args, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if "--json" in args else result.stdout

    def fails(self, code: int, *args: str, match: str) -> str:
        result = self.run(*args)
        assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
        error = result.stderr.strip()
        assert "Traceback" not in error and "\n" not in error, error  # one clear line
        assert match in error, error
        return error


def make_project(url: str, cwd: Path) -> Project:
    store = open_store(url)
    try:
        world = seed(store)
    finally:
        store.close()
    return Project(url, cwd, world)


@pytest.fixture
def project(store_url: str, tmp_path: Path) -> Project:
    return make_project(store_url, tmp_path)


@pytest.fixture
def sqlite_project(sqlite_url: str, tmp_path: Path) -> Project:
    return make_project(sqlite_url, tmp_path)


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def langfuse_recorder(httpserver: Any) -> list[tuple[str, dict[str, Any]]]:
    recorded: list[tuple[str, dict[str, Any]]] = []
    stamp = "2025-01-01T00:00:00Z"

    def datasets(request: Request) -> Response:
        body = request.get_json()
        recorded.append((request.path, body))
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
        recorded.append((request.path, body))
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


def _chat(path: Path, ids: list[str], items: dict[str, GoldenItem], *_: Any) -> None:
    for row, item_id in zip(jsonl(path), ids, strict=True):
        assert row["messages"][:-1] == items[item_id].input
        assert row["messages"][-1] == {"role": "assistant", "content": items[item_id].expected_output}
        assert row.get("tools") == items[item_id].tools


def _preference(path: Path, ids: list[str], items: dict[str, GoldenItem], *_: Any) -> None:
    for row, item_id in zip(jsonl(path), ids, strict=True):
        assert row["input"]["messages"] == items[item_id].input
        assert row["preferred_output"] == [{"role": "assistant", "content": items[item_id].expected_output}]
        assert row["non_preferred_output"] == [{"role": "assistant", "content": items[item_id].original_output}]


def _dpo(path: Path, ids: list[str], items: dict[str, GoldenItem], *_: Any) -> None:
    for row, item_id in zip(jsonl(path), ids, strict=True):
        assert (row["prompt"], row["chosen"][0]["content"], row["rejected"][0]["content"]) == (
            items[item_id].input,
            items[item_id].expected_output,
            items[item_id].original_output,
        )


def _hf(path: Path, ids: list[str], items: dict[str, GoldenItem], version: Any, *_: Any) -> None:
    from datasets import load_from_disk

    loaded = load_from_disk(str(path))
    assert sorted(loaded) == ["test", "train"] and sum(len(loaded[s]) for s in loaded) == len(ids) == 3
    rebuilt = sorted((hf_exporter.item_from_row(r) for s in loaded for r in loaded[s]), key=lambda i: i.id)
    assert rebuilt == version.items
    assert hf_exporter.manifest_from_info(loaded["train"].info)["manifest"]["file_sha256"] == version.info.file_sha256


def _langfuse(_path: Any, ids: list[str], items: dict[str, GoldenItem], version: Any, recorded: list) -> None:
    (_, dataset), *item_calls = recorded
    assert dataset["name"] == "support-v1" and len(item_calls) == len(ids) == 3
    for (_, body), item_id in zip(item_calls, ids, strict=True):
        assert body["sourceTraceId"] == items[item_id].provenance.trace_ids[0]
        assert body["input"]["messages"] == items[item_id].input


read_back = {
    "csv": lambda *_: None,
    "openai-chat": _chat,
    "openai-preference": _preference,
    "trl-dpo": _dpo,
    "hf": _hf,
    "langfuse": _langfuse,
}


def test_build_export_every_format_trace_back_and_verify(project: Project, httpserver: Any, store_url: str) -> None:
    p, world = project, project.world
    # every format on SQLite; on PostgreSQL (same exporters, only the log differs) a file and langfuse
    formats = FORMATS if store_url.startswith("sqlite") else ("csv", "langfuse")
    built = p.ok("golden", "build", "support", "--json")
    assert (built["version"], built["created"], built["item_count"]) == (1, True, 3)
    directory = p.cwd / "golden_sets" / "support"
    assert sorted(f.name for f in directory.iterdir()) == ["manifest.json", "v1.jsonl"]
    assert "nothing changed since v1" in p.ok("golden", "build", "support")
    assert sorted(f.name for f in directory.iterdir()) == ["manifest.json", "v1.jsonl"]
    assert [(s["name"], s["latest"], s["item_count"]) for s in p.ok("golden", "ls", "--json")] == [("support", 1, 3)]

    version = load_version(p.cwd, "support", 1)
    items = {item.id: item for item in version.items}
    recorded = langfuse_recorder(httpserver)
    lf_env = {
        "LANGFUSE_PUBLIC_KEY": "pk-test",
        "LANGFUSE_SECRET_KEY": "sk-test",
        "LANGFUSE_BASE_URL": httpserver.url_for("/").rstrip("/"),
    }
    out = {
        "csv": p.cwd / "support.csv",
        "openai-chat": p.cwd / "chat.jsonl",
        "openai-preference": p.cwd / "pref.jsonl",
        "trl-dpo": p.cwd / "dpo.jsonl",
        "hf": p.cwd / "support-hf",
    }
    results = {}
    for fmt in formats:
        args = ["export", "support@v1", "--format", fmt, "--json"]
        if fmt in out:
            args += ["--out", str(out[fmt])]
        results[fmt] = p.ok(*args, env=lf_env if fmt == "langfuse" else None)
        assert results[fmt]["item_count"] == 3 and results[fmt]["source_sha256"] == version.info.file_sha256

    # every format reads back with the same items
    assert [csv_exporter.item_from_row(r) for r in csv_exporter.read_csv(out["csv"])] == version.items
    for fmt in formats:
        read_back[fmt](out.get(fmt), results[fmt]["item_ids"], items, version, recorded)

    # the export log: one row per export, golden file hash and output hash
    log = p.ok("exports", "--json")
    assert sorted(r["format"] for r in log) == sorted(formats)
    assert {r["id"] for r in log} == {results[f]["export_id"] for f in formats}
    hashes = {r["format"]: r for r in log}
    for fmt in formats:
        assert hashes[fmt]["file_hash"] == version.info.file_sha256 and hashes[fmt]["version"] == 1
        assert hashes[fmt]["output_sha256"] == results[fmt]["sha256"]
        if fmt in out:
            digest = sha256_tree(out[fmt]) if fmt == "hf" else hashlib.sha256(out[fmt].read_bytes()).hexdigest()
            assert hashes[fmt]["output_sha256"] == digest

    # provenance: an exported row back to its trace, feedback and decisions in the store
    row_a = next(r for r in csv_exporter.read_csv(out["csv"]) if r["candidate_id"] == world.candidates["A"])
    shown = p.ok("golden", "show", "support@v1", row_a["id"][:8], "--json")
    store_part = shown["store"]
    assert [t["id"] for t in store_part["traces"]] == [world.traces["A"], world.traces["A2"]]
    assert store_part["traces"][0]["output_text"] == "Bad answer A." and store_part["missing"] == {}
    assert [f["id"] for f in store_part["feedback"]] == [world.feedback["A"]]
    assert [d["action"] for d in store_part["decisions"]] == ["accept", "edit"]
    assert {e["format"] for e in shown["exports"]} == set(formats)
    first = results[formats[-1]]["item_ids"][0]
    text = p.ok("golden", "show", "support", first)
    assert items[first].provenance.trace_ids[0] in text and "decisions" in text

    # a decision makes v2; diff names the removed item
    store = open_store(p.url)
    try:
        with store.write() as conn:
            record_decision(conn, world.candidates["B"], "reject", "ann", None, {"status": "rejected"})
    finally:
        store.close()
    assert p.ok("golden", "build", "support", "--json")["version"] == 2
    changes = p.ok("golden", "diff", "support", "v1", "v2", "--json")
    assert changes["counts"] == {"added": 0, "removed": 1, "changed": 0}
    assert changes["removed"][0]["provenance"]["candidate_id"] == world.candidates["B"]

    # verify: clean, then one modified line is caught and exported no more
    assert "match the manifest" in p.ok("golden", "verify", "support")
    path = directory / "v1.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace('"expected_output":"', '"expected_output":"EDITED ', 1)
    path.write_text("".join(lines), encoding="utf-8")
    result = p.run("golden", "verify", "support", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 6 and report["ok"] is False and "v1.jsonl:2" in report["problems"][0]["message"]
    assert report["ok"] is False and [(x["kind"], x["line"]) for x in report["problems"]] == [("modified", 2)]
    p.fails(
        6,
        "export",
        "support@v1",
        "--format",
        "csv",
        "--out",
        str(p.cwd / "tampered.csv"),
        match="does not match manifest hash",
    )
    assert not (p.cwd / "tampered.csv").exists()


def test_bad_input_is_one_clear_line_and_leaves_no_partial_file(sqlite_project: Project) -> None:
    p = sqlite_project
    p.ok("golden", "build", "support")
    p.fails(4, "golden", "show", "nope", "abcd", match="golden set 'nope' not found")
    p.fails(4, "golden", "diff", "support", "v1", "v7", match="has no v7")
    p.fails(4, "export", "support@v9", "--format", "csv", "--out", str(p.cwd / "x.csv"), match="has no v9")
    p.fails(
        2,
        "export",
        "support",
        "--format",
        "parquet",
        "--out",
        str(p.cwd / "x.csv"),
        match="unknown export format 'parquet'",
    )
    p.fails(
        2,
        "export",
        "support",
        "--format",
        "csv",
        "--out",
        str(p.cwd / "x.csv"),
        "--test-fraction",
        "0.3",
        match="only apply to --format hf",
    )
    p.fails(
        7,
        "export",
        "support",
        "--format",
        "openai-chat",
        "--out",
        str(p.cwd / "missing" / "out.jsonl"),
        match="does not exist",
    )
    (p.cwd / "afile").write_text("x")
    p.fails(
        7,
        "export",
        "support",
        "--format",
        "trl-dpo",
        "--out",
        str(p.cwd / "afile" / "out.jsonl"),
        match="is not a directory",
    )
    (p.cwd / "mine").mkdir()
    (p.cwd / "mine" / "keep.txt").write_text("mine")
    p.fails(7, "export", "support", "--format", "hf", "--out", str(p.cwd / "mine"), match="not an earlier export")
    assert [f.name for f in (p.cwd / "mine").iterdir()] == ["keep.txt"]
    # a set with nothing exportable as chat fine-tuning data
    bare = GoldenItem(input=[{"role": "user", "content": "no answer yet"}])
    build_version(p.cwd, "bare", [bare], tool_version=TOOL_VERSION)
    p.fails(
        6,
        "export",
        "bare",
        "--format",
        "openai-chat",
        "--out",
        str(p.cwd / "bare.jsonl"),
        match="no items exportable as openai-chat",
    )
    # a fresh store with nothing accepted
    empty = Project(f"sqlite:///{p.cwd / 'other' / '.workbench' / 'workbench.db'}", p.cwd / "other", p.world)
    empty.cwd.mkdir()
    empty.ok("init")  # the CLI only opens stores that exist; `init` makes a new one
    empty.fails(6, "golden", "build", "support", match="no accepted candidates")
    assert not (empty.cwd / "golden_sets").exists()
    assert sorted(f.name for f in p.cwd.iterdir() if f.name.startswith((".wbtmp", "x.", "bare.", "missing"))) == []
    assert p.ok("exports", "--json") == []  # failed exports are not logged
    assert p.ok("golden", "ls", "--json")[0]["name"] == "bare"


# ---------------------------------------------------------------- eval


class FakeEndpoints:
    """The model under test answers well only under a prompt that says GOOD; the judge rewards that."""

    def __init__(self, httpserver: Any) -> None:
        self.model_requests: list[dict[str, Any]] = []
        self.judge_requests: list[dict[str, Any]] = []
        httpserver.expect_request("/model/v1/chat/completions", method="POST").respond_with_handler(self.model)
        httpserver.expect_request("/judge/v1/chat/completions", method="POST").respond_with_handler(self.judge)
        self.model_url = httpserver.url_for("/model/v1")
        self.judge_url = httpserver.url_for("/judge/v1")

    def model(self, request: Request) -> Response:
        payload = request.get_json()
        self.model_requests.append(payload)
        system = next(m["content"] for m in payload["messages"] if m["role"] == "system")
        question = payload["messages"][-1]["content"]
        answer = f"GOOD: step by step for {question}" if "GOOD" in system else "meh."
        return Response(json.dumps(chat_body(answer, model=payload["model"])), content_type="application/json")

    def judge(self, request: Request) -> Response:
        payload = request.get_json()
        self.judge_requests.append(payload)
        answer = payload["messages"][-1]["content"].split("[Assistant answer]", 1)[1]
        score = 5 if "GOOD:" in answer else 2
        return Response(
            json.dumps(chat_body(json.dumps({"reasoning": "r", "score": score}))), content_type="application/json"
        )


def test_eval_runs_prompts_through_the_wrapped_client_and_compares_runs(project: Project, httpserver: Any) -> None:
    p = project
    fake = FakeEndpoints(httpserver)
    store = open_store(p.url)
    try:
        build_from_store(store, p.cwd, "support", tool_version=TOOL_VERSION)
    finally:
        store.close()
    common = [
        "--rubric",
        "helpfulness",
        "--model",
        "m-test",
        "--base-url",
        fake.model_url,
        "--judge-model",
        "judge-test",
        "--judge-base-url",
        fake.judge_url,
    ]
    first = p.ok("eval", "support", "--prompt", "support@1", *common, "--json")
    assert first["summary"]["n"] == 3 and first["summary"]["mean"] == 2.0 and first["comparison"] is None
    assert len(fake.model_requests) == 3 and {r["model"] for r in fake.model_requests} == {"m-test"}
    for request in fake.model_requests:  # the item's input, with the same prompt rendered from trace variables
        assert request["messages"][0] == {
            "role": "system",
            "content": "You are a support agent for Acme Router. Be brief.",
        }
        assert request["messages"][1]["content"] in p.world.questions.values()
    store = open_store(p.url)
    try:
        with store.write() as conn:
            register_prompt(conn, "support", "You are a GOOD support agent for {product}. Explain each step.")
    finally:
        store.close()
    text = p.ok("eval", "support@v1", "--prompt", "support@2", *common)
    assert "3 / 0 / 0" in text and "+3.000" in text
    runs = sorted((p.cwd / "golden_sets" / "support" / "evals").glob("*.json"))
    assert len(runs) == 2
    second = json.loads(runs[1].read_text())
    assert second["prompt"] == "support@2" and second["summary"]["mean"] == 5.0
    c = second["comparison"]
    assert c["previous_run"] == first["id"] and (c["wins"], c["losses"], c["ties"], c["n"]) == (3, 0, 0, 3)
    assert c["mean_difference"] == 3.0 and c["ci_low"] == c["ci_high"] == 3.0
    assert {r["messages"][0]["content"] for r in fake.model_requests[3:]} == {
        "You are a GOOD support agent for Acme Router. Explain each step."
    }
    # every answer is a captured trace, tagged and linked to its golden item; the judge scored those traces
    store = open_store(p.url)
    try:
        with store.read() as conn:
            evals = [t for t in list_traces(conn, limit=None) if "eval" in t.tags]
            scores = list_scores(conn, trace_ids=[t.id for t in evals], rubric_id="helpfulness")
            logged = export_rows.list_exports(conn)
    finally:
        store.close()
    item_ids = {i.id for i in load_version(p.cwd, "support").items}
    assert len(evals) == 6 and {t.metadata["golden_item_id"] for t in evals} == item_ids
    assert sorted(t.prompt_version for t in evals) == [1, 1, 1, 2, 2, 2]
    assert sorted(s.score for s in scores) == [2.0, 2.0, 2.0, 5.0, 5.0, 5.0] and logged == []
    assert {i["trace_id"] for i in second["items"]} <= {t.id for t in evals}
    assert load_manifest(p.cwd, "support").latest.version == 1  # evals do not touch the set
