"""The llm detector: a reaction judge over an OpenAI-compatible endpoint (a local fake server speaking the
protocol), reusing the judge runner with the shipped ``reaction`` rubric: verdicts become findings with
their evidence, the calls are cached (a second run sends nothing) and costed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from werkzeug import Request, Response

from workbench.feedback import SignalConfig, detect
from workbench.feedback.signals.dataset import traces
from workbench.feedback.signals.llm import reaction_judge
from workbench.store import open_store
from workbench.store import traces as trace_rows

from .conftest import run_cli
from .openai_fakes import chat_body

pytest_httpserver = pytest.importorskip("pytest_httpserver")

T0 = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
SESSION = {
    "session_id": "s",
    "user_id": "u",
    "turns": [
        {"t": 0.0, "user": "What's the capital of Spain?", "assistant": "Lisbon is the capital of Spain."},
        {"t": 30.0, "user": "no, that's wrong. It's Madrid.", "assistant": "You're right, it is Madrid."},
        {"t": 60.0, "user": "great, thanks for fixing it", "assistant": "Anytime!"},
        {"t": 90.0, "user": "And the capital of Portugal?", "assistant": "Lisbon."},
    ],
}


def _answer(request: Request) -> Response:
    """Read the reply out of the rubric's prompt and label it the way a careful judge would here."""
    prompt = json.loads(request.data)["messages"][-1]["content"]
    reply = prompt.split("[The user's next message]")[1].split("Reply with only")[0].lower()
    label = "pushback" if "wrong" in reply else "positive" if "thanks" in reply else "neutral"
    return Response(json.dumps(chat_body(json.dumps({"reaction": label}))), content_type="application/json")


@pytest.fixture
def endpoint(httpserver):  # type: ignore[no-untyped-def]
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(_answer)
    return httpserver


def test_llm_verdicts_become_findings_cached_and_costed(endpoint) -> None:  # type: ignore[no-untyped-def]
    judge = reaction_judge(model="gpt-4o-mini", base_url=endpoint.url_for("/v1"), api_key="sk-test")
    built = traces(SESSION, T0)
    found = detect(built, SignalConfig(detector="llm"), T0 + timedelta(days=1), judge=judge)
    got = {(f.signal, f.trace_id) for f in found if f.signal != "abandon"}
    assert got == {("pushback", built[0].id), ("positive", built[1].id)}
    push = next(f for f in found if f.signal == "pushback")
    assert push.detector == "pushback.llm@1" and push.evidence["why"] == {"judge verdict": 2.0}
    assert len(endpoint.log) == 3 and judge.calls == 3 and judge.cost > 0
    again = detect(built, SignalConfig(detector="llm"), T0 + timedelta(days=1), judge=judge)
    assert [f.idempotency_key for f in again] == [f.idempotency_key for f in found]
    assert len(endpoint.log) == 3 and judge.cache_hits == 3  # nothing sent the second time


def test_mine_detector_llm_caches_in_the_store(endpoint, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'llm.db'}"
    handle = open_store(url)
    with handle.write() as conn:
        trace_rows.insert_traces(conn, [t.model_dump() for t in traces(SESSION, T0)])
    handle.close()
    args = (
        "--store",
        url,
        "mine",
        "--detector",
        "llm",
        "--model",
        "gpt-4o-mini",
        "--base-url",
        endpoint.url_for("/v1"),
        "--json",
    )
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    data = orjson.loads(first.stdout)
    assert data["signals"]["pushback"]["added"] == 1 and data["signals"]["positive"]["added"] == 1
    assert len(endpoint.log) == 3
    forced = run_cli(*args[:-1], "--since", "2025-01-01", "--json", cwd=tmp_path)  # judge every session again
    assert forced.returncode == 0, forced.stderr
    assert orjson.loads(forced.stdout)["added"] == 0 and len(endpoint.log) == 3  # verdicts came from the store
