"""The capture commands through the real entry point: --json output, exit codes, one-line errors."""

from __future__ import annotations

import json

import workbench

from .conftest import run_cli
from .openai_fakes import FakeOpenAI


def _seed(tmp_path) -> str:
    with workbench.open(background_ingest=False) as wb:  # the store found from the current directory
        prompt = wb.prompts.register("support-answer", "Answer politely: {question}")
        wb.prompts.register("support-answer", "Answer briefly: {question}")
        client = wb.wrap(FakeOpenAI().client())
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            workbench={"prompt": prompt, "session_id": "s-1"},
        )
        resp = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "yo"}], workbench={"session_id": "s-2"}
        )
        wb.flush()
        return workbench.trace_id(resp)


def test_traces_show_prompts_json(tmp_path):
    tid = _seed(tmp_path)
    listed = json.loads(run_cli("traces", "--json", cwd=tmp_path).stdout)
    assert len(listed) == 2 and listed[0]["id"] == tid  # newest first
    only = json.loads(run_cli("traces", "--prompt", "support-answer@1", "--json", cwd=tmp_path).stdout)
    assert [t["session_id"] for t in only] == ["s-1"]
    assert json.loads(run_cli("traces", "--prompt", "support-answer@2", "--json", cwd=tmp_path).stdout) == []
    by_session = json.loads(run_cli("traces", "--session", "s-2", "--limit", "5", "--json", cwd=tmp_path).stdout)
    assert [t["id"] for t in by_session] == [tid]
    shown = json.loads(run_cli("show", tid, "--json", cwd=tmp_path).stdout)
    assert shown["id"] == tid and shown["output_text"] == "Paris is the capital of France."
    prompts = json.loads(run_cli("prompts", "--json", cwd=tmp_path).stdout)
    assert [(p["name"], p["version"]) for p in prompts] == [("support-answer", 1), ("support-answer", 2)]
    human = run_cli("traces", cwd=tmp_path)
    assert human.returncode == 0 and "support-answer@1" in human.stdout


def test_ingest_command_moves_spooled_records(tmp_path):
    with workbench.open(background_ingest=False) as wb:
        client = wb.wrap(FakeOpenAI().client())
        for _ in range(5):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        wb._writer.flush()
        wb._closed = True  # leave the records in the spool, as a killed app would
    result = run_cli("ingest", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["traces"] == 5
    assert len(json.loads(run_cli("traces", "--json", cwd=tmp_path).stdout)) == 5


def test_unknown_trace_and_bad_options(tmp_path):
    _seed(tmp_path)
    missing = run_cli("show", "no-such-trace", cwd=tmp_path)
    assert missing.returncode == 4
    assert missing.stderr.strip() == "error: no trace with id or response id 'no-such-trace'"
    bad_ref = run_cli("traces", "--prompt", "support-answer@two", cwd=tmp_path)
    assert bad_ref.returncode == 2 and "version must be a whole number" in bad_ref.stderr
    bad_since = run_cli("traces", "--since", "yesterday-ish", cwd=tmp_path)
    assert bad_since.returncode == 2 and "bad time" in bad_since.stderr and "Traceback" not in bad_since.stderr


def test_help_shows_examples(tmp_path):
    result = run_cli("traces", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "workbench traces --prompt" in result.stdout


def test_no_store_here_is_a_clear_error_and_creates_nothing(tmp_path):
    """Like git outside a repository: no .workbench/ here or above, no --store: say so, create nothing."""
    for args in (("traces",), ("candidates", "--json"), ()):  # () is the triage app
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 4, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error: no workbench store in") and "workbench demo" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
    # found from a subdirectory of a project, like git
    workbench.open(tmp_path).close()
    (tmp_path / "src" / "app").mkdir(parents=True)
    found = run_cli("traces", "--json", cwd=tmp_path / "src" / "app")
    assert found.returncode == 0 and json.loads(found.stdout) == []
    assert not (tmp_path / "src" / "app" / ".workbench").exists()
