"""Issue 16 item 13 (golden part): owner-only golden files, plain set names, manifests that stay in their set.

Before: golden files were created 0644 under the usual umask 022, ``"support\\n"`` was accepted as a
set name, and a manifest entry ``"file": "../other/v1.jsonl"`` was followed by ``verify`` and
``load_version`` (verify passed when the outside file matched the recorded hash).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.errors import GoldenSetError, ValidationError
from workbench.golden import load_version
from workbench.golden.exporters import export
from workbench.golden.sets import build_version, check_name
from workbench.golden.verify import verify

from ..conftest import run_cli
from ..golden_data import oasst_items

pytestmark = pytest.mark.reliability
TOOL = "workbench-test"


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_golden_files_and_exports_are_owner_only(tmp_path: Path, usual_umask: None) -> None:
    result = build_version(tmp_path, "support", oasst_items()[:5], tool_version=TOOL)
    directory = tmp_path / "golden_sets" / "support"
    assert mode(directory) == 0o700
    assert {p.name: mode(p) for p in directory.iterdir()} == {"v1.jsonl": 0o600, "manifest.json": 0o600}
    version = load_version(tmp_path, "support")
    export(version, "openai-chat", tmp_path / "chat.jsonl")
    export(version, "csv", tmp_path / "items.csv")
    export(version, "hf", tmp_path / "hf")
    assert mode(tmp_path / "chat.jsonl") == 0o600 and mode(tmp_path / "items.csv") == 0o600
    tree = [tmp_path / "hf", *(tmp_path / "hf").rglob("*")]
    assert len(tree) > 3
    assert {mode(p) for p in tree if p.is_dir()} == {0o700} and {mode(p) for p in tree if p.is_file()} == {0o600}
    assert result.created


@pytest.mark.parametrize(
    "name",
    [
        "support\n",
        "support\r\n",
        "../escape",
        "a/b",
        "..",
        ".hidden",
        "",
        "x" * 101,
        "sup port",
        "tab\tname",
        "nul\x00",
        "/abs",
        "trailing/",
    ],
)
def test_names_that_are_not_one_plain_path_component_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValidationError, match="golden set name"):
        check_name(name)
    with pytest.raises(ValidationError):
        build_version(tmp_path, name, oasst_items()[:2], tool_version=TOOL)
    assert not (tmp_path / "golden_sets").exists() or not any((tmp_path / "golden_sets").iterdir())


def test_cli_refuses_a_name_with_a_trailing_newline(tmp_path: Path, sqlite_url: str) -> None:
    run_cli("--store", sqlite_url, "init", cwd=tmp_path)  # a store to build from (or exit 4 on older CLIs)
    result = run_cli("--store", sqlite_url, "golden", "build", "support\n", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "golden set name" in result.stderr
    assert not (tmp_path / "golden_sets").exists()


@pytest.mark.parametrize(
    "pointer", ["../other/v1.jsonl", "/tmp/outside-v1.jsonl", "v2.jsonl", "./v1.jsonl", "v1.jsonl/../../other/v1.jsonl"]
)
def test_a_manifest_cannot_point_outside_its_set(tmp_path: Path, pointer: str) -> None:
    build_version(tmp_path, "support", oasst_items()[:3], tool_version=TOOL)
    build_version(tmp_path, "other", oasst_items()[:3], tool_version=TOOL)  # same bytes: the hashes match
    manifest_path = tmp_path / "golden_sets" / "support" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["versions"][0]["file"] = pointer
    manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(GoldenSetError, match=r"versions\.0.*file must be 'v1\.jsonl'"):
        verify(tmp_path, "support")
    with pytest.raises(GoldenSetError):
        load_version(tmp_path, "support")
    result = run_cli("golden", "verify", "support", cwd=tmp_path)
    assert result.returncode == 6, (result.stdout, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1 and "v1.jsonl" in result.stderr


def test_a_manifest_naming_another_set_or_a_path_is_refused(tmp_path: Path) -> None:
    build_version(tmp_path, "support", oasst_items()[:2], tool_version=TOOL)
    manifest_path = tmp_path / "golden_sets" / "support" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["name"] = "../support"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(GoldenSetError, match="not a plain name"):
        verify(tmp_path, "support")
