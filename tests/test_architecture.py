"""Imports flow one way: tui/cli -> domain packages -> store -> models/errors."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
BASE = {"errors", "models", "ids"}
DOMAIN = {"capture", "feedback", "candidates", "judge", "golden", "attribution", "prompts", "importers"}
APP = {"workbench", "cli", "commands", "tui", "demo", "__init__", "__main__"}


def _area(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def _imports(path: Path) -> set[str]:
    module = "workbench." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if path.name == "__init__.py" else 0)
                base = ".".join(parts[:keep])
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def _modules() -> list[tuple[str, Path]]:
    return [("workbench." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts), p) for p in PACKAGE.rglob("*.py")]


def test_only_store_imports_sqlalchemy_and_only_tui_imports_textual():
    for name, path in _modules():
        for imported in _imports(path):
            if imported.split(".")[0] in ("sqlalchemy", "alembic"):
                assert _area(name) == "store", f"{name} imports {imported}"
            if imported.split(".")[0] == "textual":
                assert _area(name) == "tui", f"{name} imports {imported}"


def test_layers_point_one_way():
    for name, path in _modules():
        area = _area(name)
        for imported in _imports(path):
            if not imported.startswith("workbench.") and imported != "workbench":
                continue
            target = _area(imported) if imported != "workbench" else "__init__"
            if area in BASE:
                assert target in BASE, f"{name} (base) imports {imported}"
            elif area == "store":
                assert target in BASE | {"store"}, f"{name} (store) imports {imported}"
            elif area in DOMAIN:
                assert target not in APP, f"{name} (domain) imports {imported}"


def test_calibration_is_pure():
    calibration = PACKAGE / "judge" / "calibration"
    for path in calibration.rglob("*.py") if calibration.exists() else []:
        for imported in _imports(path):
            assert not imported.startswith("workbench.store"), f"{path} imports {imported}"


def test_ruff_lint_and_format_are_clean():
    """The standard is "ruff clean"; without a test it drifted (99 files unformatted at one point)."""
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it is in the dev extra)")
    root = PACKAGE.parent
    pinned = re.search(r'"ruff==([^"]+)"', (root / "pyproject.toml").read_text())
    version = subprocess.run([ruff, "--version"], capture_output=True, text=True).stdout.split()[-1]
    if pinned is None or version != pinned.group(1):
        pytest.skip(f"ruff {version} is not the pinned release; formatting differs between releases")
    for args in (["check", "--quiet", "."], ["format", "--check", "--quiet", "."]):
        done = subprocess.run([ruff, *args], cwd=root, capture_output=True, text=True)
        assert done.returncode == 0, f"ruff {args[0]}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
