"""The ASGI app of `workbench serve` (Starlette): OTLP/HTTP traces in, feedback in, over one store.

Durability is the wrapper's: every accepted span is appended to this process's spool segment (a shared
memory map, so it is in the page cache and survives ``kill -9``) before the 200 is sent; a background
thread ingests the spool into the store. A span the store would refuse is reported back as rejected
(OTLP partial success) instead of being accepted and quarantined later. When the spool cannot take a
record (full, disk full) the request fails with 503 and the exporter retries: span ids make trace ids,
so a retried span is stored once.

Every error is one line of JSON (``{"error": "..."}``) with a 4xx/5xx status. Limits: request bodies
(compressed and decompressed) for OTLP and for feedback, and a per-key (or per-token) rate limit.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..capture import otlp
from ..capture.ingest import BackgroundIngester, ingest_spool
from ..errors import NotFoundError, StoreError, StoreUnavailableError, ValidationError
from ..store.locate import locate
from .openapi import openapi_document
from .spool import RotatingAheadWriter
from .tokens import TOKEN_PREFIX, TokenError, issue_token, verify_token

__all__ = ["ServeConfig", "create_app", "create_app_from_env"]

log = logging.getLogger("workbench.serve")
CONFIG_ENV = "WORKBENCH_SERVE_CONFIG"
FEEDBACK_KINDS = ("thumbs", "rating", "correction", "comment")


@dataclass
class ServeConfig:
    """What `workbench serve` was started with (passed to worker processes as JSON in the environment)."""

    store_url: str
    spool: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    rate_limit: float = 100.0  # feedback API: requests per second per key or token (burst: 2 s worth)
    ingest_rate_limit: float = 0.0  # OTLP: requests per second per key (0: none; exporters batch and retry)
    max_otlp_bytes: int = 16 << 20  # per request, compressed and decompressed
    max_feedback_bytes: int = 64 << 10
    max_batch_bytes: int = 1 << 20
    max_batch_items: int = 1000
    # "process": a follower process ingests the spool (mapping spans costs ~50-100 us of Python each; kept off
    # the receiving process's GIL); "thread": a thread of this process; "off": leave it to `workbench ingest`
    ingest: str = "thread"
    ingest_interval: float = 0.5
    key_cache_s: float = 1.0  # how long a verified key is trusted without asking the store again
    fsync: str = "rotate"
    segment_bytes: int = 16 << 20
    spool_limit: int = 1 << 30

    def to_env(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise ValidationError(f"{CONFIG_ENV} is not set (start the app with `workbench serve`)")
        return cls(**orjson.loads(raw))


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    one_line = " ".join(str(message).split())[:2000]
    return Response(orjson.dumps({"error": one_line}) + b"\n", status, headers=headers, media_type="application/json")


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=_default) + b"\n", status, media_type="application/json")


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    raise TypeError(type(value).__name__)


@dataclass
class Principal:
    """Who is calling: a project key (with scopes) or a feedback token (bound to one trace)."""

    id: str
    scopes: tuple[str, ...] = ()
    token_ref: str | None = None


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """A token bucket per principal (in this process): ``rate`` requests/s, bursts of 2 s worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, rate * 2)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, who: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(who)
            if bucket is None:
                bucket = self._buckets[who] = _Bucket(self.burst, now)
                if len(self._buckets) > 100_000:  # tokens are many and short-lived: forget the oldest
                    for key in list(self._buckets)[:50_000]:
                        del self._buckets[key]
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / self.rate
                raise ApiError(
                    429,
                    f"rate limit of {self.rate:g} requests/s exceeded",
                    {"Retry-After": f"{wait:.0f}" if wait >= 1 else "1"},
                )
            bucket.tokens -= 1.0


class ServeState:
    """Per-process state: the store (opened when it answers), the spool writer, the ingester, caches."""

    def __init__(self, config: ServeConfig) -> None:
        from ..workbench import spool_dir

        self.config = config
        self.location = locate(config.store_url)
        self.spool_dir = Path(config.spool) if config.spool else spool_dir(self.location)
        self.writer = RotatingAheadWriter(
            self.spool_dir,
            fsync=config.fsync,
            max_segment_bytes=config.segment_bytes,
            limit_bytes=config.spool_limit,
        )
        self.ingester = BackgroundIngester(self.get_store, self.spool_dir, interval=config.ingest_interval)
        self.limiter = RateLimiter(config.rate_limit)
        self.ingest_limiter = RateLimiter(config.ingest_rate_limit)
        self._store: Any = None
        self._store_lock = threading.Lock()
        self._keys: dict[str, tuple[float, Principal | None, str]] = {}
        self._refreshing: set[str] = set()
        self._refresh_lock = threading.Lock()
        self._secrets: dict[str, bytes] = {}
        self._feedback: Any = None
        self._prompts: dict[tuple[str, int], tuple[float, tuple[str, str] | None]] = {}
        self._secrets_read = 0.0
        self.accepted_spans = 0

    def get_store(self) -> Any:
        if self._store is None:
            from ..store import open_store

            with self._store_lock:
                if self._store is None:
                    self._store = open_store(self.location.url)
        return self._store

    @property
    def feedback(self) -> Any:
        if self._feedback is None:
            from ..feedback.explicit import FeedbackAPI

            self._feedback = FeedbackAPI(self.get_store(), catch_up=self.catch_up)
        return self._feedback

    def catch_up(self) -> None:
        """Feedback on a trace still in the spool (sent a moment ago): ingest now, then look again."""
        ingest_spool(self.get_store(), self.spool_dir, wait=True, timeout=5.0)

    def prompt_ids(self, name: str, version: int) -> tuple[str, str] | None:
        """(id, content hash) of a registered prompt version; None when it is not registered (asked again after
        ``key_cache_s``, so spans naming an unregistered prompt do not cost a store query each)."""
        key = (name, version)
        now = time.monotonic()
        cached = self._prompts.get(key)
        if cached is not None and (cached[1] is not None or cached[0] > now):
            return cached[1]
        from ..store import prompts as prompt_rows

        try:
            with self.get_store().read() as conn:
                prompt = prompt_rows.get_prompt(conn, name, version)
            found: tuple[str, str] | None = (prompt.id, prompt.content_hash)
        except (NotFoundError, StoreError):
            found = None
        if len(self._prompts) > 10_000:
            self._prompts.clear()
        self._prompts[key] = (now + self.config.key_cache_s, found)
        return found

    # -- credentials ------------------------------------------------------------------------------------
    def key_principal(self, secret: str) -> Principal:
        """The key's principal; 401 unknown, 403 revoked.

        A key seen before is answered from memory and re-checked in the background once its entry is older
        than ``key_cache_s`` (a revocation takes effect within about that long), so OTLP keeps being spooled
        while the store is down or partitioned, as the wrapper keeps spooling; a key never seen needs the store.
        """
        now = time.monotonic()
        cached = self._keys.get(secret)
        if cached is None:
            cached = self._check_key(secret)
        elif cached[0] < now:
            self._refresh_key_later(secret)
        principal = cached[1]
        if principal is None:
            raise ApiError(403 if "revoked" in cached[2] else 401, cached[2])
        return principal

    def _check_key(self, secret: str) -> tuple[float, Principal | None, str]:
        from ..store import keys as key_rows

        with self.get_store().read() as conn:
            key = key_rows.find_key(conn, secret)
        expires = time.monotonic() + self.config.key_cache_s
        if key is None:
            cached: tuple[float, Principal | None, str] = (expires, None, "unknown API key")
        elif not key.active:
            cached = (expires, None, f"API key {key.prefix}… ({key.name}) was revoked")
        else:
            cached = (expires, Principal(key.id, key.scopes), "")
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[secret] = cached
        return cached

    def _refresh_key_later(self, secret: str) -> None:
        with self._refresh_lock:
            if secret in self._refreshing:
                return
            self._refreshing.add(secret)

        def refresh() -> None:
            try:
                self._check_key(secret)
            except Exception as exc:  # noqa: BLE001 - store down: keep the last answer, try again later
                log.warning("workbench serve: could not re-check an API key (store unavailable?): %s", exc)
            finally:
                with self._refresh_lock:
                    self._refreshing.discard(secret)

        threading.Thread(target=refresh, name="workbench-key-check", daemon=True).start()

    def token_principal(self, token: str) -> Principal:
        try:
            grant = verify_token(token, self._secrets)
        except TokenError as exc:
            if "signature" not in str(exc):
                raise ApiError(401, str(exc)) from None
            if time.monotonic() - self._secrets_read < 1.0:  # forged tokens cannot make every request a query
                raise ApiError(401, str(exc)) from None
            self.refresh_secrets()  # a secret created since this process started
            try:
                grant = verify_token(token, self._secrets)
            except TokenError as again:
                raise ApiError(401, str(again)) from None
        return Principal(f"token:{grant.ref}", ("feedback",), grant.ref)

    def refresh_secrets(self, *, create: bool = False) -> dict[str, bytes]:
        from ..store import keys as key_rows

        store = self.get_store()
        self._secrets_read = time.monotonic()
        if create:
            with store.write() as conn:
                self._secrets = key_rows.signing_secrets(conn, create=True)
        else:
            with store.read() as conn:
                self._secrets = key_rows.signing_secrets(conn, create=False)
        return self._secrets

    def issue(self, ref: str, ttl: Any) -> tuple[str, float]:
        secrets = self._secrets or self.refresh_secrets(create=True)
        key_id = max(secrets)
        return issue_token(ref, ttl, key_id=key_id, secret=secrets[key_id])


# -- request helpers --------------------------------------------------------------------------------------
def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "missing credentials: send Authorization: Bearer <workbench key or feedback token>")
    return value.strip()


async def _principal(request: Request, scope: str, *, tokens: bool = False) -> Principal:
    state: ServeState = request.app.state.serve
    secret = _bearer(request)
    if secret.startswith(TOKEN_PREFIX):
        if not tokens:
            raise ApiError(403, "a feedback token can only send feedback on its trace")
        principal = state.token_principal(secret)
    elif secret in state._keys:
        principal = state.key_principal(secret)  # from memory; a stale entry is re-checked in the background
    else:
        principal = await run_in_threadpool(state.key_principal, secret)  # a first sight asks the store
        if scope not in principal.scopes:
            raise ApiError(403, f"this API key lacks the {scope!r} scope (it has: {', '.join(principal.scopes)})")
    (state.ingest_limiter if scope == "ingest" else state.limiter).check(principal.id)
    return principal


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes: never read whole first."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, f"request body is {int(declared):,} bytes; the limit is {limit:,}")
        except ValueError:
            raise ApiError(400, "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body passes the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise ApiError(415, f"Content-Encoding {encoding!r} is not supported (use gzip, deflate or none)")
    decoder = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = decoder.decompress(body, limit + 1)
        if len(out) > limit or decoder.unconsumed_tail:
            raise ApiError(413, f"decompressed body passes the limit of {limit:,} bytes")
        out += decoder.flush()
    except zlib.error as exc:
        raise ApiError(400, f"body is not valid {encoding}: {exc}") from None
    if not decoder.eof:
        raise ApiError(400, f"body is truncated {encoding}")
    return out


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _json_body(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON (UTF-8): {exc}") from None


# -- OTLP ---------------------------------------------------------------------------------------------------
async def otlp_traces(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    await _principal(request, "ingest")
    media = _media_type(request)
    if media not in ("application/x-protobuf", "application/protobuf", "application/json"):
        raise ApiError(415, f"Content-Type must be application/x-protobuf or application/json, not {media or 'none'!r}")
    limit = state.config.max_otlp_bytes
    raw = _decompress(await _body(request, limit), request.headers.get("content-encoding", ""), limit)
    try:
        if media == "application/json":
            batch = otlp.spool_records_json(_json_body(raw), state.prompt_ids)
        else:
            batch = otlp.spool_records_protobuf(raw, state.prompt_ids)
    except ValidationError as exc:
        raise ApiError(400, str(exc)) from None
    _spool(state, batch)
    return _otlp_response(media, batch.rejected)


def _spool(state: ServeState, batch: otlp.SpoolBatch) -> None:
    """Append each LLM span's record; only then may the request be answered (mapping happens at ingest)."""
    append = state.writer.append
    for head, body in batch.records:
        if not append(head, body):
            raise ApiError(
                503,
                f"the spool cannot take more records ({state.writer.last_error or 'full'}); retry later",
                {"Retry-After": "5"},
            )
    state.accepted_spans += len(batch.records)


def _otlp_response(media: str, rejected: list[str]) -> Response:
    message = "; ".join(rejected[:5]) + (f"; and {len(rejected) - 5} more" if len(rejected) > 5 else "")
    if media == "application/json":
        body: dict[str, Any] = {}
        if rejected:
            body["partialSuccess"] = {"rejectedSpans": str(len(rejected)), "errorMessage": message}
        return Response(orjson.dumps(body), 200, media_type="application/json")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = len(rejected)
        response.partial_success.error_message = message
    return Response(response.SerializeToString(), 200, media_type="application/x-protobuf")


# -- feedback -----------------------------------------------------------------------------------------------
def _add_feedback(state: ServeState, item: Any, principal: Principal) -> dict[str, Any]:
    """One feedback item with exactly the Python API's semantics (wb.feedback.<kind>)."""
    if not isinstance(item, dict):
        raise ValidationError("each feedback item must be a JSON object")
    known = {"kind", "trace_id", "ref", "value", "up", "scale", "text", "user_id", "idempotency_key", "metadata"}
    unknown = sorted(set(item) - known)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(known))})")
    kind = item.get("kind")
    if kind not in FEEDBACK_KINDS:
        raise ValidationError(f"field 'kind' must be one of {', '.join(FEEDBACK_KINDS)}, not {kind!r}")
    ref = item.get("trace_id", item.get("ref"))
    if principal.token_ref is not None:
        if ref is not None and ref != principal.token_ref:
            raise ApiError(403, "this feedback token is for another trace")
        ref = principal.token_ref
    if ref is None:
        raise ValidationError("field 'trace_id' is required (a trace id or the provider's response id)")
    options = {k: item[k] for k in ("user_id", "idempotency_key", "metadata") if item.get(k) is not None}
    api = state.feedback
    if kind == "thumbs":
        up = item.get("up", item.get("value"))
        if up in (0, 1) and not isinstance(up, bool):
            up = bool(up)
        stored = api.thumbs(ref, up=up, **options)
    elif kind == "rating":
        if "scale" in item:
            options["scale"] = item["scale"]
        stored = api.rating(ref, item.get("value"), **options)
    elif kind == "correction":
        stored = api.correction(ref, item.get("text"), **options)
    else:
        stored = api.comment(ref, item.get("text"), **options)
    return stored.model_dump(mode="json")


def _feedback_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return ApiError(400, str(exc))
    if isinstance(exc, NotFoundError):
        return ApiError(404, str(exc))
    if isinstance(exc, StoreUnavailableError):
        return ApiError(503, str(exc), {"Retry-After": "5"})
    if isinstance(exc, StoreError):
        return ApiError(500, str(exc))
    raise exc


async def feedback_one(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    principal = await _principal(request, "feedback", tokens=True)
    _require_json(request)
    item = _json_body(await _body(request, state.config.max_feedback_bytes))
    try:
        stored = await run_in_threadpool(_add_feedback, state, item, principal)
    except Exception as exc:  # noqa: BLE001 - mapped to a status or re-raised
        raise _feedback_error(exc) from None
    return json_response(stored, 201)


async def feedback_batch(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    principal = await _principal(request, "feedback", tokens=True)
    _require_json(request)
    document = _json_body(await _body(request, state.config.max_batch_bytes))
    items = document.get("items") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ApiError(400, 'body must be {"items": [...]} or an array of feedback items')
    if len(items) > state.config.max_batch_items:
        raise ApiError(413, f"{len(items):,} items; a batch holds at most {state.config.max_batch_items:,}")

    def run() -> list[dict[str, Any]]:
        results = []
        for item in items:
            try:
                results.append({"ok": True, "feedback": _add_feedback(state, item, principal)})
            except Exception as exc:  # noqa: BLE001 - each item reports its own outcome
                error = _feedback_error(exc)
                results.append({"ok": False, "status": error.status, "error": str(error)})
        return results

    results = await run_in_threadpool(run)
    return json_response({"accepted": sum(r["ok"] for r in results), "results": results})


async def feedback_tokens(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    await _principal(request, "feedback")
    _require_json(request)
    document = _json_body(await _body(request, state.config.max_feedback_bytes))
    if not isinstance(document, dict) or not isinstance(document.get("trace_id"), str):
        raise ApiError(400, 'body must be {"trace_id": "...", "ttl": "2h"}')
    try:
        token, expires = await run_in_threadpool(state.issue, document["trace_id"], document.get("ttl", "2h"))
    except Exception as exc:  # noqa: BLE001
        raise _feedback_error(exc) from None
    return json_response({"token": token, "trace_id": document["trace_id"], "expires_at": expires}, 201)


def _require_json(request: Request) -> None:
    media = _media_type(request)
    if media != "application/json":
        raise ApiError(415, f"Content-Type must be application/json, not {media or 'none'!r}")


# -- misc ---------------------------------------------------------------------------------------------------
async def healthz(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    store = "ok"
    try:
        await run_in_threadpool(state.get_store)
    except StoreError as exc:
        store = f"unavailable: {exc}"
    body = {
        "ok": store == "ok",
        "store": store,
        "spool": str(state.spool_dir),
        "dropped": state.writer.dropped,
        "accepted_spans": state.accepted_spans,
        "ingest_error": state.ingester.last_error,
        "pid": os.getpid(),
    }
    return json_response(body, 200 if body["ok"] else 503)


async def openapi(request: Request) -> Response:
    return json_response(openapi_document())


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, str(exc), exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    return error_response(status, getattr(exc, "detail", None) or "error", getattr(exc, "headers", None))


async def _store_error(request: Request, exc: Exception) -> Response:
    """The store is down or locked (credentials are checked against it): 503, the client retries later."""
    if isinstance(exc, StoreUnavailableError) or type(exc) is StoreError:
        return error_response(503, str(exc), {"Retry-After": "5"})
    return error_response(500, str(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("workbench serve: unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


def _warm_up(state: ServeState) -> None:
    """Do once at start-up what the first OTLP request would otherwise pay for (~20 ms): the decoding and
    response modules, and the store's connection (when it answers; if not, requests still spool)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: F401
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    otlp.spool_records_protobuf(b"", None)
    otlp.spool_records_json({"resourceSpans": []}, None)
    _otlp_response("application/x-protobuf", [])
    try:
        from ..store import keys as key_rows

        with state.get_store().read() as conn:  # the key query compiled and cached before a key is first seen
            key_rows.find_key(conn, "wb_sk_warm-up")
    except StoreError as exc:
        log.warning("workbench serve: the store does not answer yet (%s); spans are spooled meanwhile", exc)


def _start_follower(state: ServeState) -> subprocess.Popen[bytes]:
    """The ingest follower process (one per spool takes the follow lock; it exits when this process does)."""
    env = {**os.environ, "WORKBENCH_URL": state.location.url, "WORKBENCH_SPOOL": str(state.spool_dir)}
    # Same process group as serve (so stopping the group stops it), but a terminal's Ctrl-C is serve's to handle:
    # the follower ignores SIGINT and exits on serve's SIGTERM or when serve is gone (after a last pass).
    # It runs at the lowest CPU priority (nice 19, a batch job's): mapping spans (~50 us each, half a core at
    # 10k spans/s) is throughput work that can wait for an idle core; a request waiting for one is latency every
    # exporter sees. On a saturated machine it falls behind and the spool absorbs the difference (bounded by
    # spool_limit, then 503 with Retry-After).
    code = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.nice(19); "
        "from workbench.capture.sidecar import main; sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--parent",
            str(os.getpid()),
            "--interval",
            str(state.config.ingest_interval),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=False,
    )


def create_app(config: ServeConfig) -> Starlette:
    state = ServeState(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.writer.start()  # the first segment and a spare, before the first request
        follower = _start_follower(state) if config.ingest == "process" else None
        if config.ingest == "thread":
            state.ingester.start()
        await run_in_threadpool(_warm_up, state)  # also loads anyio's backend (~18 ms of imports) for requests
        # What start-up allocated (modules, the ASGI stack, the store's engine) lives as long as the process:
        # out of the collector's sight, so a full collection walks only what requests allocate (an older
        # generation's pass over ~75k start-up objects is a pause of several ms on the event loop).
        gc.collect()
        gc.freeze()
        # Background threads (key re-checks, ingest in "thread" mode, the spool helper) hand the GIL back to
        # the event loop after 1 ms instead of 5 when both want it.
        sys.setswitchinterval(0.001)
        try:
            yield
        finally:
            state.ingester.stop(timeout=5.0)
            state.writer.close()  # seal: everything accepted is in a sealed segment for the next ingest
            if follower is not None:
                follower.terminate()  # it finishes its pass; what is left waits for the next ingest
                await asyncio.to_thread(follower.wait, 10)
            if config.ingest in ("thread", "process"):
                await asyncio.to_thread(state.ingester.run_once, wait=True, timeout=5.0)
            if state._store is not None:
                state._store.close()

    from starlette.exceptions import HTTPException

    app = Starlette(
        routes=[
            Route("/v1/traces", otlp_traces, methods=["POST"]),
            Route("/api/feedback", feedback_one, methods=["POST"]),
            Route("/api/feedback/batch", feedback_batch, methods=["POST"]),
            Route("/api/feedback-tokens", feedback_tokens, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=config.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "content-encoding"],
                max_age=600,
            )
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            StoreError: _store_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.serve = state
    return app


def create_app_from_env() -> Starlette:
    """uvicorn factory for worker processes (``workbench serve --workers N``)."""
    return create_app(ServeConfig.from_env())
