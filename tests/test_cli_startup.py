"""The CLI starts without the heavy libraries: a command imports only what it uses (issue 12).

Speed itself is measured in bench/cli_startup.py (wall time against `python -c pass` in the same run);
these tests hold the behaviour that makes it fast: which modules a process ends up importing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import workbench

from .conftest import run_cli
from .openai_fakes import FakeOpenAI

HEAVY = ("sqlalchemy", "numpy", "scipy", "sklearn", "datasets", "textual", "openai", "rapidfuzz")
OTHER_AREAS = tuple(
    f"workbench.commands.{area}"
    for area in ("feedback", "mine", "candidates", "judge", "golden", "attribution", "demo", "serve", "importers")
)


def _imported_after(code: str, cwd: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``code`` in a fresh interpreter; report which HEAVY top-level packages it imported by the end."""
    probe = (
        "import atexit, json, sys\n"
        f"HEAVY = {(*HEAVY, *OTHER_AREAS)!r}\n"
        "atexit.register(lambda: sys.stderr.write('\\nIMPORTED ' + json.dumps(sorted(m for m in HEAVY "
        "if m in sys.modules)) + '\\n'))\n"
        f"sys.argv = ['workbench', *{list(argv)!r}]\n" + code
    )
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    line = next(x for x in result.stderr.splitlines() if x.startswith("IMPORTED "))
    return result, json.loads(line.removeprefix("IMPORTED "))


def test_importing_the_cli_pulls_in_no_heavy_library(tmp_path):
    result, imported = _imported_after("import workbench.cli\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert imported == [], f"`import workbench.cli` imported {imported}"


def test_help_lists_every_command_without_a_heavy_library(tmp_path):
    result, imported = _imported_after("from workbench.cli import main\nmain()\n", tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("traces", "init", "mine", "candidates", "judge", "golden", "export", "compare", "demo"):
        assert f" {command} " in result.stdout, command
    assert [m for m in imported if m in HEAVY] == []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory whose store holds a few captured calls (through the real wrapper)."""
    wb = workbench.open(tmp_path)
    client = wb.wrap(FakeOpenAI().client())
    prompt = wb.prompts.register("support-answer", "Answer: {q}")
    for i in range(12):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"question {i}"}],
            workbench={"prompt": prompt, "session_id": f"s-{i % 3}"},
        )
    wb.close()
    return tmp_path


def test_traces_works_and_imports_only_the_store(project):
    result, imported = _imported_after(
        "from workbench.cli import main\nmain()\n", project, "traces", "--limit", "5", "--json"
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert len(listed) == 5 and listed[0]["input"][-1]["content"] == "question 11"  # newest first
    # only the store's library, and only the capture commands (the other areas are not even imported)
    assert imported == ["sqlalchemy"], f"`workbench traces` imported {imported}"
    human = run_cli("traces", "--prompt", "support-answer@1", "--limit", "20", cwd=project)
    assert human.returncode == 0 and "12 traces" in human.stdout
