"""`workbench import langfuse` against a local HTTP server (pytest-httpserver) that answers in the shapes of
Langfuse's public API reference (TraceWithDetails, ObservationsView, scores, score configs; page/limit with
``meta.totalPages``), including a 429 and a 500 on the way: generations become trace rows, scores feedback;
a second run adds nothing; an interrupted run resumes at its page; bad keys and a dead server are one line."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from workbench.importers.langfuse import LangfuseSource, import_langfuse
from workbench.store import feedback as feedback_rows
from workbench.store import open_store
from workbench.store import traces as trace_rows

from .conftest import run_cli

T0 = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)
PK, SK = "pk-lf-test", "sk-lf-test"


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeLangfuse:
    """Paged JSON like Langfuse's public API; ``fail[(path, page)]`` = statuses answered first."""

    def __init__(self, traces: list[dict], observations: list[dict], scores: list[dict], configs: list[dict]) -> None:
        self.data = {
            "/api/public/traces": traces,
            "/api/public/observations": observations,
            "/api/public/scores": scores,
            "/api/public/score-configs": configs,
        }
        self.fail: dict[tuple[str, int], list[int]] = {}
        self.log: list[tuple[str, int, int]] = []

    def __call__(self, request: Request) -> Response:
        page = int(request.args.get("page", 1))
        limit = int(request.args.get("limit", 50))
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (PK, SK):
            return self._answer(request.path, page, 401, {"message": "Invalid credentials"})
        if request.path not in self.data:
            return self._answer(request.path, page, 404, {"message": "not found"})
        queued = self.fail.get((request.path, page))
        if queued:
            status = queued.pop(0)
            return self._answer(request.path, page, status, {"message": "try later"}, {"Retry-After": "0"})
        items = self.data[request.path]
        if request.args.get("type"):
            items = [i for i in items if i.get("type") == request.args["type"]]
        chunk = items[(page - 1) * limit : page * limit]
        meta = {"page": page, "limit": limit, "totalItems": len(items), "totalPages": math.ceil(len(items) / limit)}
        return self._answer(request.path, page, 200, {"data": chunk, "meta": meta})

    def _answer(self, path: str, page: int, status: int, body: Any, headers: dict | None = None) -> Response:
        self.log.append((path, page, status))
        return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")


def project() -> FakeLangfuse:
    traces, observations = [], []
    for t in range(12):
        at = T0 + timedelta(minutes=10 * t)
        tid = f"lf-trace-{t}"
        obs_ids = []
        for g in range(0 if t == 11 else 2):  # trace 11 has no generation
            oid = f"lf-obs-{t}-{g}"
            obs_ids.append(oid)
            start = at + timedelta(seconds=30 * g)
            observations.append(
                {
                    "id": oid,
                    "traceId": tid,
                    "type": "GENERATION",
                    "name": "openai-chat",
                    "startTime": iso(start),
                    "endTime": iso(start + timedelta(milliseconds=1250)),
                    "completionStartTime": iso(start + timedelta(milliseconds=300)) if g == 1 else None,
                    "model": "gpt-4o-mini-2024-07-18",
                    "modelParameters": {"temperature": "0.2", "max_tokens": "Infinity"},
                    "input": [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": f"question {t}.{g}"},
                    ],
                    "output": {"role": "assistant", "content": f"answer {t}.{g}"},
                    "version": None,
                    "metadata": {"env": "prod"},
                    "usage": {"input": 11, "output": 7, "total": 18, "unit": "TOKENS"},
                    "usageDetails": {"input": 11, "output": 7, "total": 18},
                    "costDetails": {"total": 0.0001},
                    "level": "ERROR" if (t, g) == (3, 1) else "DEFAULT",
                    "statusMessage": "upstream timeout" if (t, g) == (3, 1) else None,
                    "parentObservationId": None,
                    "promptId": f"p-{t % 2}",
                    "promptName": "support" if t % 3 else None,
                    "promptVersion": 1 + t % 2 if t % 3 else None,
                    "latency": 1.25,
                    "timeToFirstToken": 0.3 if g == 1 else None,
                }
            )
        observations.append(
            {
                "id": f"lf-span-{t}",
                "traceId": tid,
                "type": "SPAN",
                "name": "retrieval",
                "startTime": iso(at),
                "level": "DEFAULT",
            }
        )
        traces.append(
            {
                "id": tid,
                "timestamp": iso(at),
                "name": "support-chat",
                "input": None,
                "output": None,
                "sessionId": f"sess-{t // 4}",
                "release": "v7",
                "version": None,
                "userId": f"user-{t % 5}",
                "metadata": {},
                "tags": ["prod", "chat"],
                "public": False,
                "htmlPath": f"/trace/{tid}",
                "latency": 1.5,
                "totalCost": 0.0002,
                "observations": [*obs_ids, f"lf-span-{t}"],
                "scores": [],
            }
        )
    scores = [
        score("s-num", "lf-trace-0", "lf-obs-0-0", "NUMERIC", 4, config="cfg-5"),
        score("s-guess", "lf-trace-1", "lf-obs-1-1", "NUMERIC", 0.25),
        score("s-bool-up", "lf-trace-2", "lf-obs-2-0", "BOOLEAN", 1, "True"),
        score("s-bool-down", "lf-trace-2", "lf-obs-2-1", "BOOLEAN", 0, "False", author="annotator-1"),
        score("s-cat", "lf-trace-4", "lf-obs-4-0", "CATEGORICAL", 2, "too long"),
        score("s-trace", "lf-trace-5", None, "BOOLEAN", 0, "False"),  # trace-level: the last generation
        score("s-nogen", "lf-trace-11", None, "NUMERIC", 1),
        score("s-session", None, None, "NUMERIC", 1),
        score("s-fix", "lf-trace-6", "lf-obs-6-0", "CORRECTION", 0, "The answer is 42."),
    ]
    configs = [
        {
            "id": "cfg-5",
            "name": "stars",
            "dataType": "NUMERIC",
            "minValue": 1,
            "maxValue": 5,
            "isArchived": False,
            "createdAt": iso(T0),
            "updatedAt": iso(T0),
            "projectId": "p",
        }
    ]
    return FakeLangfuse(traces, observations, scores, configs)


def score(
    sid: str,
    trace: str | None,
    obs: str | None,
    kind: str,
    value: Any,
    string: str | None = None,
    *,
    config: str | None = None,
    author: str | None = None,
) -> dict[str, Any]:
    return {
        "id": sid,
        "traceId": trace,
        "sessionId": None if trace else "sess-0",
        "observationId": obs,
        "name": "user-feedback",
        "source": "API",
        "dataType": kind,
        "value": value,
        "stringValue": string,
        "comment": "from the widget",
        "timestamp": iso(T0 + timedelta(hours=3)),
        "createdAt": iso(T0),
        "updatedAt": iso(T0),
        "authorUserId": author,
        "configId": config,
        "environment": "default",
    }


@pytest.fixture
def langfuse(httpserver: HTTPServer) -> FakeLangfuse:
    fake = project()
    httpserver.expect_request(re.compile(r"^/api/public/.*")).respond_with_handler(fake)
    return fake


def cli(url: str, server: HTTPServer, tmp: Any, *extra: str, secret: str = SK) -> Any:
    return run_cli(
        "--store",
        url,
        "import",
        "langfuse",
        "--host",
        server.url_for("/").rstrip("/"),
        "--public-key",
        PK,
        "--secret-key",
        secret,
        *extra,
        cwd=tmp,
    )


def test_generations_become_traces_and_scores_feedback_idempotently(
    store_url: str, httpserver: HTTPServer, langfuse: FakeLangfuse, tmp_path: Any
) -> None:
    langfuse.fail[("/api/public/observations", 2)] = [429]
    langfuse.fail[("/api/public/scores", 1)] = [500]
    open_store(store_url).close()
    result = cli(store_url, httpserver, tmp_path, "--page-size", "5", "--json")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["imported"] == 22 and report["feedback"] == 7
    assert report["skipped"] == {
        "score on a trace with no generation": 1,
        "session or dataset-run score (no trace)": 1,
        "Langfuse trace with no generation": 1,
    }
    assert ("/api/public/observations", 2, 429) in langfuse.log and ("/api/public/scores", 1, 500) in langfuse.log
    assert [p for path, p, s in langfuse.log if path == "/api/public/observations" and s == 200] == [1, 2, 3, 4, 5]

    store = open_store(store_url)
    try:
        with store.read() as conn:
            traces = trace_rows.list_traces(conn, limit=None, newest_first=False)
            votes = feedback_rows.list_feedback(conn)
    finally:
        store.close()
    by_obs = {t.metadata["langfuse"]["observation_id"]: t for t in traces}
    first, streamed, failed = by_obs["lf-obs-1-0"], by_obs["lf-obs-1-1"], by_obs["lf-obs-3-1"]
    assert first.created_at == T0 + timedelta(minutes=10)
    assert (first.session_id, first.user_id, first.tags) == ("sess-0", "user-1", ["prod", "chat"])
    assert (first.prompt_name, first.prompt_version) == ("support", 2)
    assert by_obs["lf-obs-0-0"].prompt_name is None
    assert first.input[-1] == {"role": "user", "content": "question 1.0"} and first.output_text == "answer 1.0"
    assert (first.prompt_tokens, first.completion_tokens, first.total_tokens) == (11, 7, 18)
    assert first.params == {"temperature": 0.2, "max_tokens": "Infinity"}
    assert first.model_resolved == "gpt-4o-mini-2024-07-18" and first.latency_ms == 1250.0
    assert streamed.ttft_ms == 300.0 and first.ttft_ms is None
    assert (failed.status, failed.error_message) == ("error", "upstream timeout")
    assert first.metadata["env"] == "prod" and first.metadata["langfuse"]["trace_id"] == "lf-trace-1"

    got = {v.metadata["langfuse"]["score_id"]: v for v in votes}
    assert set(got) == {"s-num", "s-guess", "s-bool-up", "s-bool-down", "s-cat", "s-trace", "s-fix"}
    assert (got["s-num"].signal, got["s-num"].value, got["s-num"].metadata["scale"]) == ("rating", 4.0, [1.0, 5.0])
    assert got["s-guess"].metadata["scale"] == [0.0, 1.0] and got["s-guess"].metadata["scale_guessed"]
    assert (got["s-bool-up"].signal, got["s-bool-up"].value) == ("thumbs", 1.0)
    assert got["s-bool-down"].value == 0.0 and got["s-bool-down"].user_id == "annotator-1"
    assert got["s-bool-up"].user_id == "user-2" and got["s-bool-up"].trace_id == by_obs["lf-obs-2-0"].id
    assert (got["s-cat"].signal, got["s-cat"].text) == ("comment", "user-feedback: too long")
    assert got["s-trace"].trace_id == by_obs["lf-obs-5-1"].id  # the trace's last generation
    assert (got["s-fix"].signal, got["s-fix"].text) == ("correction", "The answer is 42.")
    assert got["s-num"].created_at == T0 + timedelta(hours=3) and got["s-num"].kind == "explicit"

    again = cli(store_url, httpserver, tmp_path, "--page-size", "5", "--json")
    assert again.returncode == 0, again.stderr
    second = orjson.loads(again.stdout)
    assert second["imported"] == 0 and second["feedback"] == 0
    assert second["skipped"]["already imported"] == 22 and second["skipped"]["feedback already imported"] == 7


def test_an_interrupted_import_resumes_at_its_page(
    sqlite_url: str, httpserver: HTTPServer, langfuse: FakeLangfuse
) -> None:
    store = open_store(sqlite_url)
    source = LangfuseSource(httpserver.url_for("/").rstrip("/"), PK, SK)
    calls = []

    def stop_after_second_generation_page(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3 + 2:  # 3 pages of traces, then 2 of generations (each committed)
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            import_langfuse(store, source, page_size=5, progress=stop_after_second_generation_page)
        with store.read() as conn:
            assert trace_rows.count_traces(conn) == 10
        langfuse.log.clear()
        report = import_langfuse(store, source, page_size=5)
        assert report.resumed_from == "observations page 3"
        assert [p for path, p, _ in langfuse.log if path == "/api/public/observations"] == [3, 4, 5]
        assert report.imported == 12 and report.feedback == 7 and "already imported" not in report.skipped
        with store.read() as conn:
            assert trace_rows.count_traces(conn) == 22
    finally:
        store.close()


def test_dry_run_reads_everything_and_writes_nothing(
    sqlite_url: str, httpserver: HTTPServer, langfuse: FakeLangfuse, tmp_path: Any
) -> None:
    open_store(sqlite_url).close()
    result = cli(sqlite_url, httpserver, tmp_path, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["imported"] == 22 and report["feedback"] == 7 and report["dry_run"]
    store = open_store(sqlite_url)
    with store.read() as conn:
        assert trace_rows.count_traces(conn) == 0 and feedback_rows.list_feedback(conn) == []
    store.close()


@pytest.mark.parametrize(
    ("setup", "extra", "code", "message"),
    [
        ("keys", [], 2, "Langfuse refused the keys (401)"),
        ("down", ["--retries", "2"], 1, "still failing after 2 retries (HTTP 503)"),
        ("host", [], 2, "--host must be an http(s) URL"),
    ],
)
def test_bad_keys_a_dead_server_and_a_bad_host_are_one_line(
    sqlite_url: str,
    httpserver: HTTPServer,
    langfuse: FakeLangfuse,
    tmp_path: Any,
    setup: str,
    extra: list[str],
    code: int,
    message: str,
) -> None:
    open_store(sqlite_url).close()
    if setup == "down":
        langfuse.fail[("/api/public/traces", 1)] = [503] * 10
    if setup == "host":
        result = run_cli(
            "--store",
            sqlite_url,
            "import",
            "langfuse",
            "--host",
            "langfuse.example",
            "--public-key",
            PK,
            "--secret-key",
            SK,
            cwd=tmp_path,
        )
    else:
        result = cli(sqlite_url, httpserver, tmp_path, *extra, secret="wrong" if setup == "keys" else SK)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_the_fake_server_answers_in_the_langfuse_sdks_own_models() -> None:
    """The shapes served above parse with the langfuse SDK's generated models (scores, page meta), so the
    importer is tested against Langfuse's published API, not against shapes of our own invention."""
    models = pytest.importorskip("langfuse.api.commons.types.score", reason="needs the langfuse SDK (dev extra)")
    from langfuse.api.core.pydantic_utilities import parse_obj_as
    from langfuse.api.utils.pagination.types.meta_response import MetaResponse

    fake = project()
    scores = fake.data["/api/public/scores"]
    parsed = [parse_obj_as(models.Score, item) for item in scores]  # type: ignore[arg-type]
    assert [type(p).__name__ for p in parsed[:5]] == [
        "Score_Numeric",
        "Score_Numeric",
        "Score_Boolean",
        "Score_Boolean",
        "Score_Categorical",
    ]
    assert parsed[-1].string_value == "The answer is 42."
    meta = parse_obj_as(MetaResponse, {"page": 1, "limit": 5, "totalItems": 24, "totalPages": 5})
    assert meta.total_pages == 5
