"""The JSONL trace format: one call per line, read by `workbench import openai-jsonl` and written by
`workbench export-traces` (this module is the one home of the format, both directions).

A line is ``{"ts", "request", "response", ...}``: ``request`` is the keyword arguments of
``chat.completions.create`` or ``responses.create`` and ``response`` the API's response object, so a log
an app already keeps (``request=kwargs, response=resp.model_dump()``) imports as it is. The response is
parsed by the wrapper's own parser (capture/parse.py), so an imported trace is the row the wrapper would
have recorded for the same call. Only ``request`` and ``response`` are required (``response`` may be
null when ``error`` says why the call failed).

Optional keys: ``ts`` (epoch seconds or ISO 8601; default: now), ``latency_ms``, ``ttft_ms``,
``session_id``, ``user_id``, ``prompt`` ("NAME@VERSION"), ``variables``, ``variant``, ``tags``,
``metadata``, ``parent_id``, and what export-traces adds so that a round trip is exact: ``id`` (the
trace id), ``prompt_id``, ``prompt_hash``, ``base_url``, ``http_status``, ``status`` ("cancelled" for a
stream closed early) and ``error`` (``{"type", "message", "status"}``).

Without an ``id``, a line's trace id is derived from its time and either the response's own id or the
line's bytes: importing the same file twice adds nothing, and ids still sort by time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from ..capture.parse import record_to_row

__all__ = ["LineError", "line_to_row", "row_to_line", "trace_id_for"]


class LineError(ValueError):
    """Why one line cannot become a trace (the message names the key)."""


def trace_id_for(ms: int, key: bytes) -> str:
    """A 26-character trace id: 12 hex of epoch milliseconds (time order) + 14 hex of a hash of ``key``."""
    return f"{max(ms, 0):012x}{hashlib.blake2b(key, digest_size=7).hexdigest()}"


def _time(value: Any) -> datetime:
    if isinstance(value, bool):
        raise LineError(f"'ts' must be epoch seconds or an ISO 8601 time, not {value!r}")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise LineError(f"'ts' {value!r} is out of range") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            raise LineError(f"'ts' {value[:40]!r} is not an ISO 8601 time") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise LineError(f"'ts' must be epoch seconds or an ISO 8601 time, not {type(value).__name__}")


def _prompt(value: Any) -> tuple[str, int]:
    if not isinstance(value, str) or "@" not in value:
        raise LineError(f"'prompt' must be 'NAME@VERSION', not {str(value)[:60]!r}")
    name, _, version = value.rpartition("@")
    if not name or not version.isdigit():
        raise LineError(f"'prompt' must be 'NAME@VERSION' with a whole-number version, not {value[:60]!r}")
    return name, int(version)


def _operation(request: Mapping[str, Any], response: Any, given: Any) -> str:
    if given in ("chat", "responses"):
        return str(given)
    if "messages" in request:
        return "chat"
    if "input" in request or (isinstance(response, Mapping) and response.get("object") == "response"):
        return "responses"
    raise LineError("'request' has neither 'messages' (chat.completions) nor 'input' (responses)")


def line_to_row(
    obj: Any,
    raw: bytes,
    *,
    prompts: Mapping[tuple[str, int], tuple[str, str]] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``traces`` row of one parsed line (``raw``: its bytes, for a derived id). Raises LineError."""
    if not isinstance(obj, dict):
        raise LineError(f"a line must be a JSON object, not {type(obj).__name__}")
    request = obj.get("request")
    if not isinstance(request, dict):
        raise LineError("'request' is missing or not an object" if request is None else "'request' must be an object")
    response = obj.get("response")
    error = obj.get("error")
    if response is None and not isinstance(error, dict):
        raise LineError("'response' is missing (give the API's response object, or 'error' for a failed call)")
    if response is not None and not isinstance(response, dict):
        raise LineError("'response' must be an object")
    if error is not None and not isinstance(error, dict):
        raise LineError("'error' must be an object with 'type' and 'message'")
    created = _time(obj["ts"]) if obj.get("ts") is not None else (now or datetime.now(UTC))
    op = _operation(request, response, obj.get("operation"))
    # Text columns, numbers and lengths are checked by the store's row check (encode_trace_row), which
    # names the column; here only what would store but read back wrong (a list where an object belongs).
    tags = obj.get("tags")
    if tags is not None and (type(tags) is not list or not all(type(t) is str for t in tags)):
        raise LineError("'tags' must be a list of strings")
    metadata, variables = obj.get("metadata"), obj.get("variables")
    if metadata is not None and type(metadata) is not dict:
        raise LineError("'metadata' must be an object")
    if variables is not None and type(variables) is not dict:
        raise LineError("'variables' must be an object")
    prompt: tuple[Any, ...] = (None, None, None, None)
    if obj.get("prompt") is not None:
        name, version = _prompt(obj["prompt"])
        known = (prompts or {}).get((name, version), (None, None))
        prompt = (obj.get("prompt_id") or known[0], name, version, obj.get("prompt_hash") or known[1])
    trace_id = obj.get("id")
    if trace_id is None:
        ms = int(created.timestamp() * 1000)
        rid = response.get("id") if isinstance(response, dict) else None
        key = f"response:{rid}:{ms}".encode() if isinstance(rid, str) and rid else b"line:" + raw.strip()
        trace_id = trace_id_for(ms, key)
    meta: dict[str, Any] = {
        "id": trace_id,
        "ts": created.timestamp(),
        "op": op,
        "req": request,
        "ctx": {
            "session_id": obj.get("session_id"),
            "user_id": obj.get("user_id"),
            "parent_id": obj.get("parent_id"),
            "prompt": prompt,
            "variables": variables,
            "variant": obj.get("variant"),
            "tags": tags,
            "metadata": metadata,
        },
        "lat": obj.get("latency_ms"),
        "ttft": obj.get("ttft_ms"),
        "status": obj.get("http_status"),
        "base": obj.get("base_url"),
    }
    if error is not None:
        meta["err"] = error
    if obj.get("status") == "cancelled":
        meta["end"] = "cancelled"
    try:
        row = record_to_row(meta, orjson.dumps(response) if response is not None else b"")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise LineError(f"cannot read the call: {exc}") from None
    row["created_at"] = created  # exact to the microsecond (the float in meta may round)
    row["stream"] = bool(request.get("stream"))
    return row


def _usage(row: Mapping[str, Any], names: tuple[str, str, str]) -> dict[str, Any] | None:
    values = (row.get("prompt_tokens"), row.get("completion_tokens"), row.get("total_tokens"))
    if all(v is None for v in values):
        return None
    return dict(zip(names, values, strict=True))


def _response(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The API's response object the row was parsed from (as far as the row keeps it)."""
    has_output = any(
        row.get(k) is not None
        for k in ("provider_response_id", "output_text", "tool_calls", "model_resolved", "total_tokens")
    )
    if row.get("status") == "error" and not has_output:
        return None
    created = int(row["created_at"].timestamp())
    if row.get("operation") == "responses":
        output: list[dict[str, Any]] = []
        if row.get("output_text") is not None:
            output.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": row["output_text"], "annotations": []}],
                }
            )
        for call in row.get("tool_calls") or []:
            function = call.get("function") or {}
            output.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments"),
                }
            )
        response: dict[str, Any] = {
            "id": row.get("provider_response_id"),
            "object": "response",
            "created_at": created,
            "model": row.get("model_resolved"),
            "output": output,
        }
        usage = _usage(row, ("input_tokens", "output_tokens", "total_tokens"))
    else:
        message: dict[str, Any] = {"role": "assistant", "content": row.get("output_text")}
        if row.get("tool_calls"):
            message["tool_calls"] = row["tool_calls"]
        response = {
            "id": row.get("provider_response_id"),
            "object": "chat.completion",
            "created": created,
            "model": row.get("model_resolved"),
            "choices": [{"index": 0, "message": message}],
        }
        usage = _usage(row, ("prompt_tokens", "completion_tokens", "total_tokens"))
    if row.get("system_fingerprint") is not None:
        response["system_fingerprint"] = row["system_fingerprint"]
    if usage is not None:
        response["usage"] = usage
    return response


def _request(row: Mapping[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"model": row.get("model_requested")}
    if row.get("operation") == "responses":
        request["input"] = row.get("input") or []
    else:
        request["messages"] = row.get("input") or []
    request.update(row.get("params") or {})
    if row.get("stream"):
        request["stream"] = True
    return request


def row_to_line(row: Mapping[str, Any]) -> dict[str, Any]:
    """One stored trace row as a line of the format (keys with no value are left out)."""
    line: dict[str, Any] = {
        "id": row["id"],
        "ts": row["created_at"].astimezone(UTC).isoformat(timespec="microseconds"),
        "operation": row.get("operation") or "chat",
        "request": _request(row),
        "response": _response(row),
    }
    if row.get("prompt_name") is not None:
        line["prompt"] = f"{row['prompt_name']}@{row['prompt_version']}"
    for key in (
        "latency_ms",
        "ttft_ms",
        "session_id",
        "user_id",
        "parent_id",
        "prompt_id",
        "prompt_hash",
        "variables",
        "variant",
        "base_url",
        "http_status",
    ):
        if row.get(key) is not None:
            line[key] = row[key]
    if row.get("tags"):
        line["tags"] = row["tags"]
    if row.get("metadata"):
        line["metadata"] = row["metadata"]
    if row.get("status") == "cancelled":
        line["status"] = "cancelled"
    if row.get("status") == "error" or row.get("error_type") or row.get("error_message"):
        line["error"] = {
            "type": row.get("error_type"),
            "message": row.get("error_message"),
            "status": row.get("http_status"),
        }
    return line
