"""Issue 16 item 10: feedback input is validated at the boundary, on SQLite and PostgreSQL.

Before: ``"scale": 5`` and a non-string idempotency key ended ``workbench feedback import`` with a
traceback, a NUL character did too on PostgreSQL, and a 100 MB line was stored. Now each bad value is
one ``ValidationError`` naming the field (API) or one line with the line number (CLI, exit 2), and every
good row around it is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from workbench.errors import ValidationError
from workbench.feedback.explicit import LIMITS, FeedbackAPI
from workbench.ids import new_id
from workbench.store import Store, open_store
from workbench.store import feedback as feedback_rows
from workbench.store import traces as trace_rows

from ..conftest import run_cli

pytestmark = pytest.mark.reliability


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    st = open_store(store_url)
    yield st
    st.close()


def add_trace(store: Store) -> str:
    trace_id = new_id()
    row = dict(
        id=trace_id,
        created_at=datetime.now(UTC),
        operation="chat",
        user_id="u1",
        input=[],
        stream=False,
        status="ok",
        params={},
        tags=[],
        metadata={},
        output_text="an answer",
    )
    with store.write() as conn:
        trace_rows.insert_traces(conn, [row])
    return trace_id


def stored(store: Store, trace_id: str) -> list[Any]:
    with store.read() as conn:
        return feedback_rows.list_feedback(conn, trace_ids=[trace_id])


BAD_CALLS: list[tuple[str, Callable[[FeedbackAPI, str], Any], str]] = [
    ("scale 5", lambda fb, t: fb.rating(t, 4, scale=5), "field 'scale' must be two numbers"),
    ("scale string", lambda fb, t: fb.rating(t, 4, scale="15"), "field 'scale' must be two numbers"),
    ("scale of three", lambda fb, t: fb.rating(t, 4, scale=[1, 3, 5]), "field 'scale' must be two numbers"),
    ("infinite value", lambda fb, t: fb.rating(t, float("inf")), "field 'value' must be a number"),
    ("int key", lambda fb, t: fb.thumbs(t, idempotency_key=12345), "field 'idempotency_key' must be a non-empty"),
    ("list key", lambda fb, t: fb.thumbs(t, idempotency_key=["k"]), "field 'idempotency_key' must be a non-empty"),
    ("long key", lambda fb, t: fb.thumbs(t, idempotency_key="k" * 191), "field 'idempotency_key' is 191 characters"),
    ("int user", lambda fb, t: fb.thumbs(t, user_id=7), "field 'user_id' must be a non-empty string"),
    ("long user", lambda fb, t: fb.thumbs(t, user_id="u" * 500), "field 'user_id' is 500 characters"),
    ("NUL text", lambda fb, t: fb.correction(t, "Paris\x00 is the capital"), "field 'text' contains a NUL"),
    ("NUL user", lambda fb, t: fb.thumbs(t, user_id="u\x001"), "field 'user_id' contains a NUL"),
    ("NUL key", lambda fb, t: fb.thumbs(t, idempotency_key="k\x00"), "field 'idempotency_key' contains a NUL"),
    ("NUL metadata", lambda fb, t: fb.thumbs(t, metadata={"a": ["x\x00"]}), "field 'metadata' contains a NUL"),
    ("int metadata key", lambda fb, t: fb.thumbs(t, metadata={1: "x"}), "field 'metadata' must be a JSON object"),
    ("huge metadata", lambda fb, t: fb.thumbs(t, metadata={"a": "x" * 20_000}), "field 'metadata' is 20,"),
    ("huge text", lambda fb, t: fb.comment(t, "x" * 100_001), "field 'text' is 100,001 characters"),
]


@pytest.mark.parametrize(("label", "call", "message"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_api_refuses_bad_values_with_the_field_named(store: Store, label: str, call: Any, message: str) -> None:
    trace_id = add_trace(store)
    api = FeedbackAPI(store)
    api.thumbs(trace_id, up=False, user_id="good")
    with pytest.raises(ValidationError, match="^" + message.replace("(", r"\(")) as info:
        call(api, trace_id)
    assert "\n" not in str(info.value)
    api.comment(trace_id, "still works", user_id="good")
    assert [(r.signal, r.user_id) for r in stored(store, trace_id)] == [("thumbs", "good"), ("comment", "good")]


def test_values_at_the_limits_are_stored(store: Store) -> None:
    trace_id = add_trace(store)
    api = FeedbackAPI(store)
    key, user = "k" * LIMITS["id_chars"], "u" * LIMITS["id_chars"]
    api.correction(
        trace_id,
        "é" * LIMITS["text_chars"],
        user_id=user,
        idempotency_key=key,
        metadata={"note": "x" * (LIMITS["metadata_bytes"] - 20)},
    )
    api.rating(trace_id, 2, scale=[0, 10])
    rows = stored(store, trace_id)
    assert [len(rows[0].text or ""), rows[0].user_id, rows[0].idempotency_key] == [LIMITS["text_chars"], user, key]
    assert rows[1].metadata["scale"] == [0.0, 10.0]


def test_cli_import_reports_each_bad_line_and_keeps_the_good_ones(store: Store, store_url: str, tmp_path: Path) -> None:
    trace_id = add_trace(store)
    good = [
        {"trace_id": trace_id, "thumbs": "down", "user_id": "g1"},
        {"trace_id": trace_id, "rating": 4, "scale": [1, 5], "user_id": "g2"},
        {"trace_id": trace_id, "comment": "fine", "user_id": "g3", "idempotency_key": "g3"},
        {"trace_id": trace_id, "correction": "Canberra.", "user_id": "g4"},
    ]
    bad = [  # (line, expected message)
        ({"trace_id": trace_id, "rating": 4, "scale": 5}, "field 'scale' must be two numbers"),
        ({"trace_id": trace_id, "thumbs": "up", "idempotency_key": 42}, "field 'idempotency_key' must be a non-empty"),
        ({"trace_id": trace_id, "correction": "Pa\u0000ris"}, "field 'text' contains a NUL character"),
        ({"trace_id": trace_id, "comment": "x" * 200_000}, "field 'text' is 200,000 characters"),
        ("HUGE", "line longer than 1,048,576 bytes"),
        ({"trace_id": 17, "thumbs": "up"}, "field 'ref' must be a trace id"),
    ]
    huge = json.dumps({"trace_id": trace_id, "comment": "y" * (2 << 20)})
    lines: list[str] = []
    expected: dict[int, str] = {}
    for i in range(max(len(good), len(bad))):  # good and bad lines interleaved
        if i < len(good):
            lines.append(json.dumps(good[i]))
        if i < len(bad):
            value, message = bad[i]
            lines.append(huge if value == "HUGE" else json.dumps(value))
            expected[len(lines)] = message
    path = tmp_path / "votes.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run_cli("--store", store_url, "feedback", "import", str(path), cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert len(errors) == len(expected), errors
    for line_number, message in expected.items():
        (line,) = [e for e in errors if e.startswith(f"{path}:{line_number}: ")]
        assert message in line, line
    assert "imported 4 feedback rows" in result.stdout
    rows = stored(store, trace_id)
    assert sorted(r.user_id for r in rows) == ["g1", "g2", "g3", "g4"]

    as_json = run_cli("--store", store_url, "feedback", "import", str(path), "--json", cwd=tmp_path)
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert sorted(e["line"] for e in report["errors"]) == sorted(expected)
    assert len(stored(store, trace_id)) == 4 + 3  # thumbs, rating, correction again; the keyed comment once
