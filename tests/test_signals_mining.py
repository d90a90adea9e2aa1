"""``mine`` with the learned detector (the default): incremental and idempotent on real stores; another
family (or version) re-mines under its own keys and watermark, never duplicating a row; the CLI picks
the family with --detector."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from workbench.feedback import SignalConfig
from workbench.feedback.mining import mine
from workbench.feedback.signals import detect_batch, embeddings_available
from workbench.feedback.signals.dataset import load_sessions, sessions_start, traces
from workbench.store import Store, open_store
from workbench.store import feedback as feedback_rows
from workbench.store import traces as trace_rows

from .conftest import run_cli

TRAIN = Path(__file__).parent / "data" / "implicit_eval" / "train.jsonl"
START = datetime(2025, 1, 6, tzinfo=UTC)


@pytest.fixture
def store(store_url: str):
    handle = open_store(store_url)
    yield handle
    handle.close()


def built(n: int = 30) -> list[list]:  # type: ignore[type-arg]
    sessions = load_sessions(TRAIN)[:n]
    return [traces(s, start) for s, start in zip(sessions, sessions_start(n), strict=True)]


def insert(store: Store, batch: list) -> None:  # type: ignore[type-arg]
    with store.write() as conn:
        trace_rows.insert_traces(conn, [t.model_dump() for t in batch])


def rows(store: Store) -> list:  # type: ignore[type-arg]
    with store.read() as conn:
        return feedback_rows.list_feedback(conn, kind="implicit")


def test_learned_mining_is_what_the_detectors_find_and_a_rerun_adds_nothing(store: Store) -> None:
    sessions = built()
    insert(store, [t for s in sessions for t in s])
    now = sessions[-1][-1].created_at + timedelta(days=1)
    first = mine(store, now=now)
    expected = {f.idempotency_key for f in detect_batch(sessions, SignalConfig(), now)}
    assert {r.idempotency_key for r in rows(store)} == expected and first.added == len(expected) > 0
    assert all(r.source.endswith(".learned@1") or r.source == "regenerate@1" for r in rows(store))
    again = mine(store, now=now)
    assert again.added == 0 and again.found <= first.found


def test_sessions_that_grow_are_judged_again_without_duplicates(store: Store) -> None:
    sessions = built(20)
    grows = next(s for s in sessions[10:] if len(s) >= 3)  # a session whose later turns arrive later
    cut = grows[1].created_at
    every = [t for s in sessions for t in s]
    insert(store, [t for t in every if t.created_at <= cut])
    early = mine(store, now=cut)
    insert(store, [t for t in every if t.created_at > cut])
    now = sessions[-1][-1].created_at + timedelta(days=1)
    later = mine(store, now=now)
    assert later.sessions < 20 and early.added > 0 and later.added > 0  # only what changed is read again
    keys = [r.idempotency_key for r in rows(store)]
    assert len(keys) == len(set(keys))
    full = {f.idempotency_key for f in detect_batch(sessions, SignalConfig(), now)}
    assert full <= set(keys)  # everything found on the whole sessions is stored, once


def test_another_family_re_mines_under_its_own_keys(store: Store) -> None:
    sessions = built(20)
    insert(store, [t for s in sessions for t in s])
    now = sessions[-1][-1].created_at + timedelta(days=1)
    mine(store, now=now, config=SignalConfig(detector="lexical"))
    lexical = Counter(r.source for r in rows(store))
    learned = mine(store, now=now)
    assert learned.sessions == 20 and learned.added > 0  # a new family has no watermark: all sessions
    by_source = Counter(r.source for r in rows(store))
    assert {s: n for s, n in by_source.items() if "learned" not in s} == lexical  # nothing of the old touched
    keys = [r.idempotency_key for r in rows(store)]
    assert len(keys) == len(set(keys))
    assert mine(store, now=now).added == 0 and mine(store, now=now, config=SignalConfig(detector="lexical")).added == 0


def test_cli_mine_detector_choice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    handle = open_store(url)
    insert(handle, [t for s in built(10) for t in s])
    handle.close()
    result = run_cli("--store", url, "mine", "--detector", "learned", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = orjson.loads(result.stdout)
    assert "repeat_ask.learned@1" in data["detectors"] and "regenerate@1" in data["detectors"]


def test_cli_embedding_without_the_extra_is_one_clear_line(tmp_path: Path) -> None:
    if embeddings_available():
        pytest.skip("the embeddings extra is installed")
    url = f"sqlite:///{tmp_path / 'e.db'}"
    open_store(url).close()
    result = run_cli("--store", url, "mine", "--detector", "embedding", cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "pip install 'workbench[embeddings]'" in lines[0]


def test_worker_processes_store_what_the_learned_detectors_find(store: Store) -> None:
    sessions = built(12)
    insert(store, [t for s in sessions for t in s])
    now = sessions[-1][-1].created_at + timedelta(days=1)
    stats = mine(store, now=now, workers=2)
    assert stats.workers == 2
    expected = sorted((f.idempotency_key, f.strength) for f in detect_batch(sessions, SignalConfig(), now))
    assert sorted((r.idempotency_key, r.strength) for r in rows(store)) == expected
