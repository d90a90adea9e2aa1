"""Shared fixtures: real SQLite files, real PostgreSQL (WORKBENCH_TEST_PG), fake OpenAI at the transport."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ENV = "WORKBENCH_TEST_PG"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's store or settings."""
    for name in ("WORKBENCH_URL", "WORKBENCH_DISABLED", "WORKBENCH_SPOOL", "WORKBENCH_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'workbench.db'}"


def _pg_base() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL schema per test (so parallel tests never collide), dropped afterwards."""
    base = _pg_base()
    if base is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test")
    import sqlalchemy as sa

    schema = f"wbtest_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {PG_ENV} is not reachable: {str(exc.orig).splitlines()[0]}")
    sep = "&" if "?" in base else "?"
    os.environ.setdefault("WORKBENCH_HOME", str(tmp_path / "pg-home"))
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        os.environ.pop("WORKBENCH_HOME", None)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Run a test against both backends (PostgreSQL skipped with a reason when not configured)."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``workbench`` entry point in a subprocess (true exit codes and stderr)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    full_env["COLUMNS"] = "200"
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        input=input,
        timeout=300,
    )
