"""`workbench import langfuse`: a Langfuse project through its public API, as the trace rows and feedback rows
workbench records itself.

Three phases, each paged (``page``/``limit``; ``meta.totalPages`` says when to stop):

1. ``GET /api/public/traces`` - each Langfuse trace's session, user, tags and name (kept in memory; a
   trace is the context its generations are recorded in);
2. ``GET /api/public/observations?type=GENERATION`` - each generation becomes one trace row: input
   messages, output text and tool calls, model, parameters, tokens, start time, latency, time to first
   token, prompt name and version, error level; ``metadata["langfuse"]`` keeps its Langfuse ids;
3. ``GET /api/public/scores`` - each score becomes explicit feedback on its generation (or, for a
   trace-level score, the trace's last generation): NUMERIC -> rating (scale from the score's config when
   Langfuse has one, else the smallest of 0..1, 0..5, 0..10, 0..100 that holds the value, noted as
   guessed), BOOLEAN -> thumbs, CATEGORICAL -> comment ("name: value"), CORRECTION -> correction.

Ids are derived from Langfuse's (trace id = start time + hash of the observation id; feedback idempotency
key = the score id), so a second run adds nothing. After every page the rows and the page reached are
committed together, so an interrupted import resumes at that page (phase 1 is read again: it writes
nothing). 429 and 5xx answers and dropped connections are retried with backoff (``Retry-After`` honoured).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from ..errors import ConfigError, WorkbenchError
from ..models import Feedback
from ..store import Store
from ..store import imports as import_rows
from .batch import ImportReport, TraceBatch
from .trace_format import trace_id_for

__all__ = ["LangfuseClient", "LangfuseError", "LangfuseSource", "import_langfuse"]

Progress = Callable[[int, int], None]
NO_GENERATION = "score on a trace with no generation"
SESSION_SCORE = "session or dataset-run score (no trace)"
TRACE_WITHOUT_GENERATION = "Langfuse trace with no generation"


class LangfuseError(WorkbenchError):
    """Langfuse could not be read (after retries); what was imported so far is kept and a re-run resumes."""

    exit_code = 1


@dataclass(frozen=True)
class LangfuseSource:
    host: str
    public_key: str
    secret_key: str

    @property
    def key(self) -> str:
        """The resume key: one import state per Langfuse host and project key."""
        return f"langfuse:{self.host.rstrip('/')}:{self.public_key}"


class LangfuseClient:
    """GET pages of Langfuse's public API with retries (429, 5xx, dropped connections)."""

    def __init__(
        self,
        source: LangfuseSource,
        *,
        retries: int = 6,
        backoff: float = 0.5,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not source.host.startswith(("http://", "https://")):
            raise ConfigError(f"--host must be an http(s) URL, not {source.host!r}")
        self.retries = retries
        self.backoff = backoff
        self.requests = 0
        self._http = httpx.Client(
            base_url=source.host.rstrip("/"),
            auth=httpx.BasicAuth(source.public_key, source.secret_key),
            timeout=timeout,
            transport=transport,
            headers={"accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        attempt = 0
        while True:
            self.requests += 1
            try:
                response = self._http.get(path, params={k: v for k, v in params.items() if v is not None})
            except httpx.TransportError as exc:
                reason, wait = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code < 300:
                    try:
                        data = response.json()
                    except ValueError:
                        raise LangfuseError(f"{path}: Langfuse answered with something that is not JSON") from None
                    if not isinstance(data, dict):
                        raise LangfuseError(f"{path}: Langfuse answered with JSON that is not an object")
                    return data
                if response.status_code in (401, 403):
                    raise ConfigError(
                        f"Langfuse refused the keys ({response.status_code}); check --public-key / --secret-key"
                    )
                if response.status_code == 404:
                    raise _NotThere(path)
                if response.status_code != 429 and response.status_code < 500:
                    raise LangfuseError(f"{path}: Langfuse answered {response.status_code}: {_short(response.text)}")
                reason, wait = f"HTTP {response.status_code}", _retry_after(response)
            attempt += 1
            if attempt > self.retries:
                raise LangfuseError(
                    f"{path}: Langfuse still failing after {self.retries} retries ({reason}); "
                    "run the import again to resume where it stopped"
                )
            time.sleep(wait if wait is not None else min(30.0, self.backoff * 2 ** (attempt - 1)))

    def pages(self, path: str, params: Mapping[str, Any], start: int = 1) -> Iterator[tuple[int, list[Any], int]]:
        """(page number, items, total items) from ``start`` until the last page."""
        page = start
        while True:
            data = self.get(path, {**params, "page": page})
            items = data.get("data")
            if not isinstance(items, list):
                raise LangfuseError(f"{path}: the answer has no 'data' list")
            meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
            total_pages = meta.get("totalPages")
            yield page, items, int(meta.get("totalItems") or 0)
            if not items or (isinstance(total_pages, int) and page >= total_pages):
                return
            page += 1


class _NotThere(LangfuseError):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: not found on this Langfuse (404); is --host the Langfuse URL?")


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), 120.0))
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------- mapping


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in value]
        return "".join(str(p) for p in parts)
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _messages(value: Any) -> list[dict[str, Any]]:
    """Langfuse generation input -> chat messages (the OpenAI integration logs the messages list)."""
    if value is None:
        return []
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
        return list(value)
    if isinstance(value, dict) and "role" in value:
        return [value]
    return [{"role": "user", "content": _text(value)}]


def _output(value: Any) -> tuple[str | None, list[dict[str, Any]] | None]:
    """Langfuse generation output -> (text, tool calls)."""
    if value is None:
        return None, None
    if isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
        value = (
            value["choices"][0].get("message", value["choices"][0]) if isinstance(value["choices"][0], dict) else value
        )
    if isinstance(value, dict) and ("content" in value or "tool_calls" in value or "role" in value):
        calls = value.get("tool_calls")
        content = value.get("content")
        return (None if content is None else _text(content)), (
            list(calls) if isinstance(calls, list) and calls else None
        )
    return _text(value), None


def _param(value: Any) -> Any:
    """Langfuse keeps model parameters as strings ("0.7"); numbers come back as numbers."""
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        return parsed if isinstance(parsed, int | float) and not isinstance(parsed, bool) else value
    return value


def _tokens(obs: Mapping[str, Any]) -> tuple[int | None, int | None, int | None]:
    for source, names in (
        (obs.get("usageDetails"), ("input", "output", "total")),
        (obs.get("usage"), ("input", "output", "total")),
        (obs, ("promptTokens", "completionTokens", "totalTokens")),
    ):
        if isinstance(source, dict):
            values = tuple(source.get(n) for n in names)
            ints = tuple(int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values)
            if any(v for v in ints):
                prompt, completion, total = ints
                if total is None and prompt is not None and completion is not None:
                    total = prompt + completion
                return prompt, completion, total
    return None, None, None


def _ms(later: datetime | None, earlier: datetime) -> float | None:
    return None if later is None else (later - earlier).total_seconds() * 1000.0


def generation_row(
    obs: Mapping[str, Any],
    trace: Mapping[str, Any] | None,
    prompts: Mapping[tuple[str, int], tuple[str, str]],
) -> dict[str, Any]:
    """One Langfuse generation (an ObservationsView) as a ``traces`` row. Raises ValueError when unusable."""
    start = _time(obs.get("startTime"))
    if start is None or not isinstance(obs.get("id"), str):
        raise ValueError("generation without an id or a startTime")
    trace = trace or {}
    text, calls = _output(obs.get("output"))
    prompt_tokens, completion_tokens, total_tokens = _tokens(obs)
    name, version = obs.get("promptName"), obs.get("promptVersion")
    prompt_id = prompt_hash = None
    if isinstance(name, str) and isinstance(version, int):
        prompt_id, prompt_hash = prompts.get((name, version), (None, None))
    else:
        name = version = None
    params = obs.get("modelParameters")
    error = obs.get("level") == "ERROR"
    metadata = obs.get("metadata") if isinstance(obs.get("metadata"), dict) else {}
    tags = trace.get("tags")
    return {
        "id": trace_id_for(int(start.timestamp() * 1000), f"langfuse:{obs['id']}".encode()),
        "created_at": start,
        "operation": "chat",
        "provider_response_id": None,
        "session_id": trace.get("sessionId"),
        "user_id": trace.get("userId"),
        "parent_id": None,
        "prompt_id": prompt_id,
        "prompt_name": name,
        "prompt_version": version,
        "prompt_hash": prompt_hash,
        "variables": None,
        "variant": None,
        "model_requested": obs.get("model"),
        "model_resolved": obs.get("model"),
        "system_fingerprint": None,
        "base_url": None,
        "params": {k: _param(v) for k, v in params.items()} if isinstance(params, dict) else {},
        "input": _messages(obs.get("input")),
        "output_text": text,
        "tool_calls": calls,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total_tokens,
        "latency_ms": _ms(_time(obs.get("endTime")), start),
        "ttft_ms": _ms(_time(obs.get("completionStartTime")), start),
        "stream": obs.get("completionStartTime") is not None,
        "status": "error" if error else "ok",
        "error_type": "LangfuseError" if error else None,
        "error_message": obs.get("statusMessage") if error else None,
        "http_status": None,
        "tags": list(tags) if isinstance(tags, list) else [],
        "metadata": {
            **metadata,
            "langfuse": {
                "trace_id": obs.get("traceId"),
                "observation_id": obs["id"],
                "name": obs.get("name"),
                "trace_name": trace.get("name"),
                "release": trace.get("release"),
                "version": obs.get("version") or trace.get("version"),
            },
        },
    }


_SCALES = ((0.0, 1.0), (0.0, 5.0), (0.0, 10.0), (0.0, 100.0))


def _scale(value: float, config: Mapping[str, Any] | None) -> tuple[list[float], bool]:
    if config and isinstance(config.get("minValue"), int | float) and isinstance(config.get("maxValue"), int | float):
        low, high = float(config["minValue"]), float(config["maxValue"])
        if low < high and low <= value <= high:
            return [low, high], False
    for low, high in _SCALES:
        if low <= value <= high:
            return [low, high], True
    return [min(0.0, value), max(1.0, value)], True


def score_feedback(
    score: Mapping[str, Any],
    trace_id: str,
    user_id: str | None,
    configs: Mapping[str, Mapping[str, Any]],
) -> Feedback | None:
    """One Langfuse score as explicit feedback on ``trace_id`` (None: a data type we do not map)."""
    kind = str(score.get("dataType") or ("NUMERIC" if isinstance(score.get("value"), int | float) else ""))
    name = str(score.get("name") or "score")
    value, string = score.get("value"), score.get("stringValue")
    at = _time(score.get("timestamp")) or _time(score.get("createdAt")) or datetime.now(UTC)
    metadata: dict[str, Any] = {
        "langfuse": {
            "score_id": score.get("id"),
            "name": name,
            "source": score.get("source"),
            "comment": score.get("comment"),
            "config_id": score.get("configId"),
        }
    }
    signal: str
    number: float | None = None
    text: str | None = None
    if kind == "BOOLEAN":
        signal = "thumbs"
        number = 1.0 if (value == 1 or str(string).lower() == "true") else 0.0
    elif kind == "NUMERIC":
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        signal, number = "rating", float(value)
        scale, guessed = _scale(number, configs.get(str(score.get("configId"))))
        metadata["scale"] = scale
        if guessed:
            metadata["scale_guessed"] = True
    elif kind == "CATEGORICAL":
        signal, text = "comment", f"{name}: {string if string is not None else value}"
    elif kind == "CORRECTION":
        signal, text = "correction", str(string if string is not None else value)
    elif kind == "TEXT":
        signal, text = "comment", f"{name}: {string if string is not None else value}"
    else:
        return None
    author = score.get("authorUserId") if isinstance(score.get("authorUserId"), str) else None
    who = author or user_id
    return Feedback(
        id=trace_id_for(int(at.timestamp() * 1000), f"langfuse-score:{score.get('id')}".encode()),
        trace_id=trace_id,
        kind="explicit",
        signal=signal,  # type: ignore[arg-type]
        value=number,
        text=text,
        strength=1.0,
        source=f"langfuse:{name}"[:200],
        user_id=who,
        metadata=metadata,
        idempotency_key=f"langfuse:{score.get('id')}",
        created_at=at,
    )


# ------------------------------------------------------------------------------------------ the run


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def import_langfuse(
    store: Store,
    source: LangfuseSource,
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    page_size: int = 100,
    progress: Progress | None = None,
    retries: int = 6,
    backoff: float = 0.5,
    transport: httpx.BaseTransport | None = None,
) -> ImportReport:
    """Import traces, generations and scores from one Langfuse project (see the module docstring)."""
    report = ImportReport(source=source.host, dry_run=dry_run)
    client = LangfuseClient(source, retries=retries, backoff=backoff, transport=transport)
    try:
        return _run(store, source, client, report, since, dry_run, page_size, progress)
    finally:
        client.close()


def _run(
    store: Store,
    source: LangfuseSource,
    client: LangfuseClient,
    report: ImportReport,
    since: datetime | None,
    dry_run: bool,
    page_size: int,
    progress: Progress | None,
) -> ImportReport:
    with store.read() as conn:
        state = import_rows.load_state(conn, source.key) or {}
        prompts = import_rows.prompt_index(conn)
    if state.get("since") != _iso(since):
        state = {}  # another window: start over (idempotent anyway)
    phase, start_page = state.get("phase", "observations"), int(state.get("page", 1))
    if state:
        report.resumed_from = f"{phase} page {start_page}"
    sink = TraceBatch(store, source.key, report, dry_run=dry_run)
    done = [0, 0]  # items done, items known in total

    def tick(items: int, total_now: int | None = None) -> None:
        done[0] += items
        if total_now is not None:
            done[1] += total_now
        if progress is not None:
            progress(done[0], max(done[1], done[0]))

    # 1. traces: the context of each generation (read only; read again on resume)
    contexts: dict[str, dict[str, Any]] = {}
    # a day's margin: a generation after --since may belong to a trace (a long conversation) begun before it
    trace_since = None if since is None else since - timedelta(days=1)
    params = {"limit": page_size, "orderBy": "timestamp.asc", "fromTimestamp": _iso(trace_since)}
    for page, items, total in client.pages("/api/public/traces", params):
        for trace in items:
            if isinstance(trace, dict) and isinstance(trace.get("id"), str):
                contexts[trace["id"]] = {
                    k: trace.get(k) for k in ("sessionId", "userId", "tags", "name", "release", "version")
                }
        tick(len(items), total if page == 1 else None)

    # 2. generations -> traces
    by_observation: dict[str, str] = {}
    last_of_trace: dict[str, tuple[datetime, str]] = {}
    if phase == "observations":
        params = {"limit": page_size, "type": "GENERATION", "fromStartTime": _iso(since)}
        for page, items, total in client.pages("/api/public/observations", params, start=start_page):
            for obs in items:
                if not isinstance(obs, dict):
                    report.skip("malformed", f"observations page {page}: an item that is not an object")
                    continue
                if obs.get("type") not in (None, "GENERATION"):
                    continue
                try:
                    row = generation_row(obs, contexts.get(str(obs.get("traceId"))), prompts)
                except ValueError as exc:
                    report.skip("malformed", f"observation {obs.get('id')}: {exc}")
                    continue
                if sink.add(row, f"observation {obs['id']}"):
                    by_observation[obs["id"]] = row["id"]
                    _latest(last_of_trace, str(obs.get("traceId")), row["created_at"], row["id"])
            sink.flush({"phase": "observations", "page": page + 1, "since": _iso(since)})
            tick(len(items), total if page == start_page else None)
        phase, start_page = "scores", 1

    # 3. scores -> feedback, on the generation (or the trace's last generation)
    with store.read() as conn:
        for trace_id, created, lf_trace, lf_obs in import_rows.metadata_ids(
            conn, "langfuse", ("trace_id", "observation_id")
        ):
            if lf_obs:
                by_observation[lf_obs] = trace_id
            if lf_trace:
                _latest(last_of_trace, lf_trace, created, trace_id)
    for lf_trace in contexts:
        if lf_trace not in last_of_trace:
            report.skip(TRACE_WITHOUT_GENERATION)
    configs = _score_configs(client, page_size)
    params = {"limit": page_size, "fromTimestamp": _iso(since)}
    for page, items, total in _scores(client, params, start_page):
        for score in items:
            if not isinstance(score, dict):
                report.skip("malformed", f"scores page {page}: an item that is not an object")
                continue
            target = by_observation.get(str(score.get("observationId"))) if score.get("observationId") else None
            if target is None and score.get("traceId"):
                latest = last_of_trace.get(str(score["traceId"]))
                target = latest[1] if latest else None
            if target is None:
                report.skip(NO_GENERATION if score.get("traceId") else SESSION_SCORE)
                continue
            user = (contexts.get(str(score.get("traceId"))) or {}).get("userId")
            item = score_feedback(score, target, user if isinstance(user, str) else None, configs)
            if item is None:
                report.skip(f"score type {score.get('dataType')!r} not mapped")
                continue
            sink.add_feedback(item)
        sink.flush({"phase": "scores", "page": page + 1, "since": _iso(since)})
        tick(len(items), total if page == start_page else None)
    sink.clear()
    return report


def _scores(client: LangfuseClient, params: Mapping[str, Any], start: int) -> Iterator[tuple[int, list[Any], int]]:
    """Scores pages: ``/api/public/scores``, or ``/api/public/v2/scores`` where only that one exists."""
    try:
        yield from client.pages("/api/public/scores", params, start=start)
        return
    except _NotThere:
        pass
    try:
        yield from client.pages("/api/public/v2/scores", params, start=start)
    except _NotThere:
        return


def _score_configs(client: LangfuseClient, page_size: int) -> dict[str, dict[str, Any]]:
    """Score configs by id (for numeric scales); an instance without the endpoint has none."""
    configs: dict[str, dict[str, Any]] = {}
    try:
        for _, items, _ in client.pages("/api/public/score-configs", {"limit": page_size}):
            configs.update({str(c.get("id")): c for c in items if isinstance(c, dict)})
    except _NotThere:
        pass
    return configs


def _latest(index: dict[str, tuple[datetime, str]], key: str, at: datetime, trace_id: str) -> None:
    seen = index.get(key)
    if seen is None or (at, trace_id) > seen:
        index[key] = (at, trace_id)
