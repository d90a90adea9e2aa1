"""The feedback API of `workbench serve`: the Python API's semantics over HTTP, project keys with scopes,
signed per-trace tokens, CORS, rate limits, size limits, one-line JSON errors; and `workbench keys`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import workbench
from workbench.serve.tokens import TokenError, issue_token, verify_token
from workbench.store import feedback as feedback_rows
from workbench.store import keys as key_rows
from workbench.store import open_store

from .conftest import run_cli
from .openai_fakes import FakeOpenAI, chat_body
from .serve_support import ServeThread


@pytest.fixture
def wb(store_url: str) -> Iterator[Any]:
    handle = workbench.open(store_url, ingest="off")
    yield handle
    handle.close()


@pytest.fixture
def key(wb: Any) -> str:
    with wb.store.write() as conn:
        return key_rows.create_key(conn, "backend", ["ingest", "feedback"])[1]


@pytest.fixture
def serve(store_url: str, wb: Any) -> Iterator[ServeThread]:
    with ServeThread(store_url, cors_origins=["http://app.example"], rate_limit=1000) as running:
        yield running


@pytest.fixture
def call(wb: Any) -> Any:
    """One wrapped call, spooled but not ingested yet (serve's feedback catches up from the spool)."""
    fake = FakeOpenAI().push(chat_body(rid="chatcmpl-fb1"), chat_body(rid="chatcmpl-fb2"))
    client = wb.wrap(fake.client())
    first = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    second = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}])
    wb._writer.flush()  # sealed, still in the spool
    return workbench.trace_id(first), workbench.trace_id(second)


def _post(serve: ServeThread, path: str, auth: str | None, body: Any, **headers: str) -> httpx.Response:
    if auth is not None:
        headers["Authorization"] = f"Bearer {auth}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{serve.url}{path}", content=content, headers={"Content-Type": "application/json", **headers}, timeout=30
    )


def _feedback(wb: Any) -> list[Any]:
    with wb.store.read() as conn:
        return feedback_rows.list_feedback(conn)


def test_every_kind_by_trace_id_or_response_id_with_idempotency(wb, key, serve, call):
    first, _ = call
    items = [
        {"kind": "thumbs", "trace_id": first, "up": False, "user_id": "u-7", "idempotency_key": "click-1"},
        {"kind": "thumbs", "trace_id": "chatcmpl-fb1", "value": 1, "user_id": "u-8"},
        {"kind": "rating", "trace_id": first, "value": 4, "scale": [1, 5], "metadata": {"screen": "chat"}},
        {"kind": "correction", "trace_id": first, "text": "Orders ship in 2 days."},
        {"kind": "comment", "trace_id": first, "text": "too long"},
    ]
    for item in items:
        response = _post(serve, "/api/feedback", key, item)
        assert response.status_code == 201, response.text
        assert response.json()["trace_id"] == first
    again = _post(serve, "/api/feedback", key, items[0])
    assert again.status_code == 201 and again.json()["id"] == _feedback(wb)[0].id  # same key: same row
    stored = _feedback(wb)
    assert [(f.signal, f.value, f.text) for f in stored] == [
        ("thumbs", 0.0, None),
        ("thumbs", 1.0, None),
        ("rating", 4.0, None),
        ("correction", None, "Orders ship in 2 days."),
        ("comment", None, "too long"),
    ]
    assert stored[0].source == "user:u-7" and stored[2].metadata == {"screen": "chat", "scale": [1.0, 5.0]}


def test_validation_errors_are_the_python_apis_one_line_400s(wb, key, serve, call):
    first, _ = call
    cases = [
        ({"kind": "rating", "trace_id": first, "value": 9}, "outside the rating scale"),
        ({"kind": "thumbs", "trace_id": first, "up": "yes"}, "'up' must be true or false"),
        ({"kind": "wave", "trace_id": first}, "'kind' must be one of"),
        ({"kind": "comment", "trace_id": first, "text": "a\u0000b"}, "NUL"),
        ({"kind": "comment", "trace_id": first, "text": "x", "colour": "red"}, "unknown field 'colour'"),
        ({"kind": "thumbs", "up": True}, "'trace_id' is required"),
        ({"kind": "correction", "trace_id": first, "text": "x" * 100_001}, None),
    ]
    for body, words in cases:
        response = _post(serve, "/api/feedback", key, body)
        expected = 413 if words is None else 400
        assert response.status_code == expected, response.text
        if words:
            assert words in response.json()["error"]
        assert response.text.count("\n") == 1
    unknown = _post(serve, "/api/feedback", key, {"kind": "thumbs", "trace_id": "chatcmpl-nope", "up": True})
    assert unknown.status_code == 404 and "chatcmpl-nope" in unknown.json()["error"]
    assert _post(serve, "/api/feedback", key, b"{bad json").status_code == 400
    assert _post(serve, "/api/feedback", key, b'{"kind": "\xff"}').status_code == 400
    wrong_type = _post(serve, "/api/feedback", key, {"kind": "thumbs"}, **{"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert _feedback(wb) == []


def test_batch_reports_each_item_and_keeps_the_good_ones(wb, key, serve, call):
    first, second = call
    response = _post(
        serve,
        "/api/feedback/batch",
        key,
        {
            "items": [
                {"kind": "thumbs", "trace_id": first, "up": True},
                {"kind": "thumbs", "trace_id": "chatcmpl-missing", "up": True},
                {"kind": "rating", "trace_id": second, "value": 0},
                {"kind": "comment", "trace_id": second, "text": "fine"},
            ]
        },
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, False, False, True]
    assert [r.get("status") for r in results] == [None, 404, 400, None]
    assert response.json()["accepted"] == 2 and len(_feedback(wb)) == 2


def test_token_from_wb_lands_and_is_bound_to_its_trace(wb, serve, call):
    first, second = call
    token = wb.feedback_token(first, ttl="2h")
    response = _post(serve, "/api/feedback", token, {"kind": "thumbs", "value": 0, "idempotency_key": "click-91"})
    assert response.status_code == 201, response.text
    assert response.json()["trace_id"] == first and response.json()["value"] == 0.0
    foreign = _post(serve, "/api/feedback", token, {"kind": "thumbs", "trace_id": second, "up": False})
    assert foreign.status_code == 403 and "another trace" in foreign.json()["error"]
    not_for_ingest = httpx.post(
        f"{serve.url}/v1/traces",
        content=b"{}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert not_for_ingest.status_code == 403
    not_for_tokens = _post(serve, "/api/feedback-tokens", token, {"trace_id": second})
    assert not_for_tokens.status_code == 403
    assert [f.trace_id for f in _feedback(wb)] == [first]


def test_expired_forged_and_malformed_tokens_are_401(wb, serve, call):
    first, _ = call
    with wb.store.write() as conn:
        secrets = key_rows.signing_secrets(conn)
    kid = max(secrets)
    expired, _ = issue_token(first, 60, key_id=kid, secret=secrets[kid], now=time.time() - 3600)
    forged, _ = issue_token(first, "1h", key_id=kid, secret=b"not the store's secret")
    valid = wb.feedback_token(first, ttl="1h")
    tampered = valid[:-3] + ("AAA" if not valid.endswith("AAA") else "BBB")
    for token, words in (
        (expired, "expired"),
        (forged, "signature"),
        (tampered, "signature"),
        ("wbft.garbage.sig", "malformed"),
        ("wb_sk_unknown", "unknown API key"),
    ):
        response = _post(serve, "/api/feedback", token, {"kind": "thumbs", "up": False, "trace_id": first})
        assert response.status_code == 401, (words, response.text)
        assert words in response.json()["error"]
    missing = _post(serve, "/api/feedback", None, {"kind": "thumbs", "up": False, "trace_id": first})
    assert missing.status_code == 401 and "Authorization" in missing.json()["error"]
    assert _feedback(wb) == []


def test_tokens_for_other_languages_from_the_endpoint(wb, key, serve, call):
    first, _ = call
    response = _post(serve, "/api/feedback-tokens", key, {"trace_id": first, "ttl": "30m"})
    assert response.status_code == 201
    token = response.json()["token"]
    assert abs(response.json()["expires_at"] - (time.time() + 1800)) < 5
    assert _post(serve, "/api/feedback", token, {"kind": "comment", "text": "thanks"}).status_code == 201
    bad_ttl = _post(serve, "/api/feedback-tokens", key, {"trace_id": first, "ttl": "forever"})
    assert bad_ttl.status_code == 400 and "ttl" in bad_ttl.json()["error"]
    with wb.store.write() as conn:
        _, ingest_only = key_rows.create_key(conn, "collector", ["ingest"])
    assert _post(serve, "/api/feedback-tokens", ingest_only, {"trace_id": first}).status_code == 403


def test_cors_allows_listed_origins_only(serve):
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = httpx.options(f"{serve.url}/api/feedback", headers={"Origin": "http://app.example", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://app.example"
    refused = httpx.options(f"{serve.url}/api/feedback", headers={"Origin": "http://evil.example", **preflight})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


def test_rate_limit_per_key(store_url, wb, key, call):
    first, _ = call
    with wb.store.write() as conn:
        _, other = key_rows.create_key(conn, "other", ["feedback"])
    with ServeThread(store_url, rate_limit=0.1) as serve:  # a burst of 1, then one request per 10 s
        codes = [
            _post(serve, "/api/feedback", key, {"kind": "thumbs", "trace_id": first, "up": True}).status_code
            for _ in range(4)
        ]
        assert codes == [201, 429, 429, 429]
        limited = _post(serve, "/api/feedback", key, {"kind": "thumbs", "trace_id": first, "up": True})
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        assert (
            _post(serve, "/api/feedback", other, {"kind": "thumbs", "trace_id": first, "up": True}).status_code == 201
        )
    with ServeThread(store_url, ingest_rate_limit=0.1) as serve:  # OTLP has its own limit (none by default)
        codes = [_post(serve, "/v1/traces", key, {"resourceSpans": []}).status_code for _ in range(4)]
        assert codes == [200, 429, 429, 429]


def test_openapi_and_healthz(serve):
    document = httpx.get(f"{serve.url}/openapi.json").json()
    assert document["openapi"].startswith("3.") and {
        "/v1/traces",
        "/api/feedback",
        "/api/feedback/batch",
        "/api/feedback-tokens",
        "/healthz",
    } <= set(document["paths"])
    health = httpx.get(f"{serve.url}/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True
    missing = httpx.get(f"{serve.url}/nope")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}


def test_token_primitives():
    token, expires = issue_token("t-1", "2h", key_id="k", secret=b"s" * 32, now=1000.0)
    assert expires == 1000.0 + 7200
    assert verify_token(token, {"k": b"s" * 32}, now=1001.0).ref == "t-1"
    with pytest.raises(TokenError, match="expired"):
        verify_token(token, {"k": b"s" * 32}, now=expires)
    with pytest.raises(TokenError, match="signature"):
        verify_token(token, {"other": b"s" * 32}, now=1001.0)


def test_keys_cli_create_list_revoke(tmp_path, sqlite_url):
    open_store(sqlite_url).close()
    created = run_cli(
        "--store", sqlite_url, "keys", "create", "--name", "backend", "--scope", "ingest", "--json", cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    secret = json.loads(created.stdout)["secret"]
    assert secret.startswith("wb_sk_") and len(secret) > 40
    listed = run_cli("--store", sqlite_url, "keys", "list", "--json", cwd=tmp_path)
    [row] = json.loads(listed.stdout)
    assert row["name"] == "backend" and row["scopes"] == ["ingest"] and "secret" not in row
    assert secret not in listed.stdout
    assert secret not in (tmp_path / "store" / "workbench.db").read_bytes().decode("latin-1")  # stored hashed
    revoked = run_cli("--store", sqlite_url, "keys", "revoke", "backend", cwd=tmp_path)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    missing = run_cli("--store", sqlite_url, "keys", "revoke", "nobody", cwd=tmp_path)
    assert missing.returncode == 4 and "Traceback" not in missing.stderr
    bad = run_cli("--store", sqlite_url, "keys", "create", "--name", "x", "--scope", "admin", cwd=tmp_path)
    assert bad.returncode == 2 and "scopes" in bad.stderr and "Traceback" not in bad.stderr
    outside = run_cli("serve", cwd=tmp_path)
    assert outside.returncode == 4 and "Traceback" not in outside.stderr


def test_store_unreachable_is_503_and_healthz_says_why(tmp_path):
    with ServeThread("postgresql+psycopg://nobody@127.0.0.1:1/none", spool=str(tmp_path / "spool")) as serve:
        response = httpx.post(
            f"{serve.url}/v1/traces",
            content=b"{}",
            headers={"Authorization": "Bearer wb_sk_x", "Content-Type": "application/json"},
        )
        assert response.status_code == 503 and "Retry-After" in response.headers
        assert "unavailable" in response.json()["error"] and response.text.count("\n") == 1
        health = httpx.get(f"{serve.url}/healthz")
        assert health.status_code == 503 and health.json()["ok"] is False
