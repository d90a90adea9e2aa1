"""Fixtures for the reliability suite (issue 16): small filesystems made by the test, a TCP proxy that
can stop forwarding, a capture app in a subprocess. Every test here is marked ``reliability``."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for this test (needs root / CAP_SYS_ADMIN; skipped with the reason otherwise)."""
    mount = tmp_path / "small-fs"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("disk-full tests need the mount command")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"disk-full tests mount a 1 MiB tmpfs, which is not permitted here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def app_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def run_app(
    *args: str, env: dict[str, str] | None = None, cwd: Path, timeout: float = 120, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m tests.reliability.app ARGS`` in a subprocess: true exit codes, signals included."""
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "tests.reliability.app", *args],
        env=env or app_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``blackhole()`` keeps connections open but forwards nothing
    (a network partition: no RST, no FIN, the peer's kernel still ACKs), ``heal()`` forwards again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self.closed.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.1)
            for sock in ready:
                if not self.forwarding.is_set():
                    continue  # partitioned: leave the bytes unread, send nothing, close nothing
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    a.close()
                    b.close()
                    return
                peers[sock].sendall(data)
            if not self.forwarding.is_set():
                self.closed.wait(0.05)

    def blackhole(self) -> None:
        self.forwarding.clear()

    def heal(self) -> None:
        self.forwarding.set()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture
def pg_proxy_url(tmp_path: Path) -> Iterator[tuple[str, TcpProxy]]:
    """A fresh PostgreSQL schema reached through a TcpProxy (skipped when WORKBENCH_TEST_PG is not set)."""
    base = os.environ.get("WORKBENCH_TEST_PG")
    if not base:
        pytest.skip("PostgreSQL tests need WORKBENCH_TEST_PG=postgresql+psycopg://postgres@127.0.0.1:5432/test")
    import sqlalchemy as sa

    url = sa.engine.make_url(base)
    schema = f"wbtest_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at WORKBENCH_TEST_PG is not reachable: {str(exc.orig).splitlines()[0]}")
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    sep = "&" if "?" in proxied else "?"
    os.environ["WORKBENCH_HOME"] = str(tmp_path / "pg-home")
    try:
        yield f"{proxied}{sep}options=-csearch_path%3D{schema}", proxy
    finally:
        proxy.close()
        os.environ.pop("WORKBENCH_HOME", None)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
