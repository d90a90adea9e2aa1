"""Issue 16 items 4, 5, 9: the store being unreachable at start-up, partitioned at close, or read-only for
a while never fails the app: open() spools, close() returns within its timeout, ingest recovers."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

import workbench
from workbench.capture.spool import list_segments
from workbench.errors import StoreUnavailableError
from workbench.store import open_store, schema
from workbench.store import traces as trace_rows

from ..openai_fakes import FakeOpenAI

MESSAGES = [{"role": "user", "content": "q"}]


def _count(store) -> int:
    with store.read() as conn:
        return trace_rows.count_traces(conn)


def _calls(wb, n: int) -> None:
    client = wb.wrap(FakeOpenAI().client())
    for _ in range(n):
        client.chat.completions.create(model="m", messages=MESSAGES)


def test_open_with_a_newer_schema_spools_then_catches_up(sqlite_url, caplog):
    """Item 4 (newer schema): open() raised SchemaTooNewError and nothing was captured."""
    store = open_store(sqlite_url)
    with store.write() as conn:
        conn.execute(schema.migrations_table.insert().values(name="9999_from_the_future", applied_at=sa.func.now()))
    with caplog.at_level(logging.WARNING, logger="workbench"):
        wb = workbench.open(sqlite_url, ingest="off")
    assert "newer workbench" in caplog.text and "keeps spooling" in caplog.text
    _calls(wb, 20)
    with pytest.raises(StoreUnavailableError):
        wb.flush()
    with store.write() as conn:  # the store is upgraded (here: the future migration goes away)
        conn.execute(schema.migrations_table.delete().where(schema.migrations_table.c.name == "9999_from_the_future"))
    assert wb.flush().traces == 20
    wb.close()
    assert _count(store) == 20


def test_open_with_postgresql_down_spools_and_close_is_quick(tmp_path, monkeypatch, caplog):
    """Item 4 (closed port): nothing listens on port 1. open() and close() return, the calls wait in the spool."""
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    with caplog.at_level(logging.WARNING, logger="workbench"):
        wb = workbench.open("postgresql+psycopg://postgres@127.0.0.1:1/test", close_timeout=3)
    assert "unavailable" in caplog.text
    _calls(wb, 10)
    started = time.monotonic()
    wb.close()
    assert time.monotonic() - started < 5
    assert len(list_segments(tmp_path / "home" / "spool")) == 1


def test_open_with_a_missing_postgresql_database_catches_up_once_created(pg_url, monkeypatch):
    """Item 4 (missing database): spools until the database exists, then ingest catches up."""
    base = sa.engine.make_url(os.environ["WORKBENCH_TEST_PG"])
    name = f"wb_missing_{uuid.uuid4().hex[:8]}"
    url = base.set(database=name).render_as_string(hide_password=False)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    wb = workbench.open(url, ingest="off")
    try:
        _calls(wb, 15)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        assert wb.flush().traces == 15
        assert _count(wb.store) == 15
    finally:
        wb.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_close_returns_within_its_timeout_during_a_network_partition(pg_proxy_url):
    """Item 5: the ingest thread is stuck in a query on a partitioned connection (no RST, no answer);
    close() used to wait on it and on the ingest lock for minutes. Nothing is lost: it stays spooled."""
    url, proxy = pg_proxy_url
    wb = workbench.open(url, ingest="thread", ingest_interval=0.05, close_timeout=3)
    _calls(wb, 10)
    deadline = time.monotonic() + 20
    while _count(wb.store) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _count(wb.store) == 10
    proxy.blackhole()
    _calls(wb, 10)
    time.sleep(0.5)  # the ingester is now inside a query that will never be answered
    closer = threading.Thread(target=wb.close, daemon=True)
    started = time.monotonic()
    closer.start()
    closer.join(15)
    hung = time.monotonic() - started
    assert not closer.is_alive(), "close() hung on the partitioned store"
    assert hung < 6
    proxy.heal()
    direct = os.environ["WORKBENCH_TEST_PG"]
    search = url.split("options=", 1)[1]
    store = open_store(f"{direct}{'&' if '?' in direct else '?'}options={search}")
    from workbench.capture.ingest import ingest_spool

    ingest_spool(store, wb.spool_dir, timeout=30)
    assert _count(store) == 20


@pytest.fixture
def immutable(tmp_path):
    """chattr +i on files of this test (root on ext4/xfs/btrfs); skipped with the reason elsewhere."""
    probe = tmp_path / "probe"
    probe.write_text("x")
    if shutil.which("chattr") is None:
        pytest.skip("read-only store test needs chattr")
    made = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"read-only store test needs chattr +i on {tmp_path}: {made.stderr.strip()}")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    touched: list[str] = []

    def set_flag(on: bool, *paths: str) -> None:
        for path in paths:
            subprocess.run(["chattr", "+i" if on else "-i", path], check=True)
            if on:
                touched.append(path)

    yield set_flag
    for path in touched:
        subprocess.run(["chattr", "-i", path], capture_output=True)


def test_sqlite_read_only_then_writable_again_ingest_recovers(sqlite_url, immutable):
    """Item 9: the database file (and its WAL) cannot be written for a while, even through open handles;
    ingest pauses, then recovers by itself, and close() does not raise. Before: 10 of 30 stored, never
    more, and close() raised StoreUnavailableError ("attempt to write a readonly database")."""
    wb = workbench.open(sqlite_url, ingest="thread", ingest_interval=0.05)
    db = sqlite_url.removeprefix("sqlite:///")
    _calls(wb, 10)
    wb._writer.flush()
    assert wb._ingester.run_once(wait=True, timeout=10)
    # The app holds a store connection of its own (feedback, prompts): ingest opens a new one while the
    # file is read-only, and SQLite opens it read-only for good. The old ingester kept it in its pool.
    held = wb.store.engine.connect()
    held.exec_driver_sql("SELECT 1").all()
    immutable(True, db, db + "-wal")
    _calls(wb, 10)
    wb._writer.flush()
    deadline = time.monotonic() + 10
    while wb._ingester.last_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert wb._ingester.last_error is not None  # paused, records still spooled
    immutable(False, db, db + "-wal")
    _calls(wb, 10)
    deadline = time.monotonic() + 40
    while _count(wb.store) < 30 and time.monotonic() < deadline:
        time.sleep(0.1)
    held.close()
    wb.close()  # must not raise
    assert _count(open_store(sqlite_url)) == 30


def test_close_returns_within_its_timeout_while_sqlite_is_locked(sqlite_url):
    """Item 5 on SQLite: another process holds the write lock; close() waits close_timeout, not the 10 s busy
    timeout per statement, and the records stay spooled for the next ingest."""
    import sqlite3

    wb = workbench.open(sqlite_url, ingest="off", close_timeout=2)
    _calls(wb, 10)
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        wb.close()
        assert time.monotonic() - started < 4
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store = open_store(sqlite_url)
    from workbench.capture.ingest import ingest_spool

    ingest_spool(store, wb.spool_dir, timeout=30)  # waits for close's own ingest if it is still finishing
    assert _count(store) == 10
