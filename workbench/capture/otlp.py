"""OpenTelemetry spans -> the trace rows the wrapper records (for `workbench serve` and `workbench import otlp`).

Pure functions over decoded OTLP: ``spans_from_protobuf(bytes)`` and ``spans_from_json(dict)`` give plain
``OtelSpan`` objects (ids as lowercase hex, attribute values as Python values); ``span_record(span, ...)``
turns one LLM span into the same spool record shape the wrapper writes (``meta`` with the response already
parsed), so ``parse.record_to_row`` builds the row and ingest stores it exactly like a wrapped call's.
Nothing here touches the network, the store or the spool.

Conventions read (first match wins, so an app that sends several agrees with itself):

- OpenTelemetry GenAI semantic conventions, current (``gen_ai.input.messages`` / ``gen_ai.output.messages``
  / ``gen_ai.system_instructions`` as JSON parts, ``gen_ai.usage.input_tokens``...) and older
  (``gen_ai.prompt.N.role/content``, ``gen_ai.completion.N.*``, ``gen_ai.usage.prompt_tokens``, and the
  ``gen_ai.user.message`` / ``gen_ai.choice`` span events). OpenLLMetry emits these too.
- OpenInference (``openinference.span.kind = LLM``, ``llm.*``, ``input.value`` / ``output.value``; when
  those hold the provider's JSON request and response, they are parsed by the wrapper's own parser, so the
  row is the wrapper's row field by field).
- workbench's own: ``workbench.prompt.name``, ``workbench.prompt.version``, ``workbench.prompt.id``,
  ``workbench.prompt.hash``, ``workbench.prompt.variables`` (JSON object), ``workbench.variant``,
  ``workbench.parent_id`` (a trace id), ``workbench.tags``; sessions and users from ``session.id`` /
  ``gen_ai.conversation.id`` and ``user.id`` / ``enduser.id``.

A span's trace id is derived from its OTLP trace and span ids (and start time, so ids stay time-ordered):
the same span sent twice is one trace. Non-LLM spans do not become traces; an LLM span's ``parent_id``
is its nearest LLM ancestor in the same request, and ``metadata["otel"]`` keeps its OTLP ids, its parent
span id, the names of its ancestors in that request, its resource, and every attribute not mapped to a
column (unknown attributes are kept, not dropped).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import ValidationError
from .parse import parse_output, record_to_row

__all__ = [
    "RECORD_KIND",
    "OtelSpan",
    "SpoolBatch",
    "record_row",
    "spool_records_json",
    "spool_records_protobuf",
    "is_llm_span",
    "map_spans",
    "span_record",
    "span_trace_id",
    "spans_from_json",
    "spans_from_protobuf",
]

STATUS_ERROR = 2
_HEX = frozenset("0123456789abcdef")


@dataclass(slots=True)
class OtelSpan:
    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status_code: int = 0  # 0 unset, 1 ok, 2 error
    status_message: str = ""
    kind: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""


# -- decoding ----------------------------------------------------------------------------------------------
def spans_from_protobuf(data: bytes) -> list[OtelSpan]:
    """Spans of an ``ExportTraceServiceRequest`` in protobuf; ValidationError for bytes that are not one."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, ValueError) as exc:
        raise ValidationError(f"body is not an OTLP ExportTraceServiceRequest in protobuf: {exc}") from None
    spans: list[OtelSpan] = []
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for s in scope_spans.spans:
                spans.append(
                    OtelSpan(
                        trace_id=_pb_id(s.trace_id, 16, "traceId"),
                        span_id=_pb_id(s.span_id, 8, "spanId"),
                        parent_span_id=_pb_id(s.parent_span_id, 8, "parentSpanId") if s.parent_span_id else None,
                        name=s.name,
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        status_code=s.status.code,
                        status_message=s.status.message,
                        kind=s.kind,
                        attributes=_pb_attributes(s.attributes),
                        events=[(e.name, e.time_unix_nano, _pb_attributes(e.attributes)) for e in s.events],
                        resource=resource,
                        scope=scope,
                    )
                )
    return spans


def _pb_id(raw: bytes, size: int, name: str) -> str:
    if len(raw) != size:
        raise ValidationError(f"span {name} must be {size} bytes, not {len(raw)}")
    return raw.hex()


def _pb_attributes(items: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in items}


def _pb_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)


def spans_from_json(document: Any) -> list[OtelSpan]:
    """Spans of an OTLP/JSON ``ExportTraceServiceRequest`` (already parsed); ids in hex or base64."""
    if not isinstance(document, Mapping):
        raise ValidationError("OTLP/JSON body must be an object with resourceSpans")
    spans: list[OtelSpan] = []
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        resource = _json_attributes(_obj(resource_spans, "resource").get("attributes"))
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            scope = _obj(scope_spans, "scope").get("name") or ""
            for s in _list(scope_spans, "spans"):
                if not isinstance(s, Mapping):
                    raise ValidationError("every span must be an object")
                status = _obj(s, "status")
                parent = _get(s, "parentSpanId", "parent_span_id")
                spans.append(
                    OtelSpan(
                        trace_id=_json_id(_get(s, "traceId", "trace_id"), 16, "traceId"),
                        span_id=_json_id(_get(s, "spanId", "span_id"), 8, "spanId"),
                        parent_span_id=_json_id(parent, 8, "parentSpanId") if parent else None,
                        name=str(s.get("name") or ""),
                        start_ns=_int(_get(s, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
                        end_ns=_int(_get(s, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
                        status_code=_status_code(status.get("code")),
                        status_message=str(status.get("message") or ""),
                        kind=_kind(s.get("kind")),
                        attributes=_json_attributes(s.get("attributes")),
                        events=[
                            (
                                str(e.get("name") or ""),
                                _int(_get(e, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
                                _json_attributes(e.get("attributes")),
                            )
                            for e in _list(s, "events")
                            if isinstance(e, Mapping)
                        ],
                        resource=resource,
                        scope=str(scope),
                    )
                )
    return spans


def _get(obj: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in obj:
            return obj[name]
    return None


def _list(obj: Mapping[str, Any], *names: str) -> list[Any]:
    value = _get(obj, *names)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"field {names[0]!r} must be an array")
    return value


def _obj(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = obj.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"field {name!r} must be an object")
    return value


def _int(value: Any, name: str) -> int:
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"field {name!r} must be an integer (or a string of one), not {value!r:.40}") from None


_STATUS = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}


def _status_code(value: Any) -> int:
    if isinstance(value, str):
        return _STATUS.get(value, 0)
    return _int(value, "status.code")


def _kind(value: Any) -> int:
    if isinstance(value, str):
        return _KINDS.get(value, 0)
    return _int(value, "kind")


def _json_id(value: Any, size: int, name: str) -> str:
    """OTLP/JSON says hex; protobuf's JSON mapping (some exporters) says base64: accept both."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"span {name} must be a non-empty string")
    lowered = value.lower()
    if len(lowered) == size * 2 and set(lowered) <= _HEX:
        return lowered
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise ValidationError(f"span {name} {value!r:.60} is neither {size * 2} hex digits nor {size} bytes in base64")
    return raw.hex()


def _json_attributes(items: Any) -> dict[str, Any]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ValidationError("attributes must be an array of {key, value}")
    out: dict[str, Any] = {}
    for kv in items:
        if not isinstance(kv, Mapping) or not isinstance(kv.get("key"), str):
            raise ValidationError("every attribute must be an object with a string key")
        out[kv["key"]] = _json_value(kv.get("value"))
    return out


def _json_value(value: Any) -> Any:
    if not isinstance(value, Mapping) or not value:
        return None
    for name, convert in _JSON_VALUES:
        if name in value:
            return convert(value[name])
    return None


def _json_array(value: Any) -> list[Any]:
    return [_json_value(v) for v in (value or {}).get("values") or []] if isinstance(value, Mapping) else []


def _json_kvlist(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    return {kv.get("key"): _json_value(kv.get("value")) for kv in value.get("values") or [] if isinstance(kv, Mapping)}


def _json_double(value: Any) -> float:
    return float(value)


_JSON_VALUES = (
    ("stringValue", str),
    ("string_value", str),
    ("intValue", lambda v: _int(v, "intValue")),
    ("int_value", lambda v: _int(v, "intValue")),
    ("doubleValue", _json_double),
    ("double_value", _json_double),
    ("boolValue", bool),
    ("bool_value", bool),
    ("arrayValue", _json_array),
    ("array_value", _json_array),
    ("kvlistValue", _json_kvlist),
    ("kvlist_value", _json_kvlist),
    ("bytesValue", str),
    ("bytes_value", str),
)


# -- receive path: spool each LLM span as it came, map it at ingest ------------------------------------------
# Mapping a span costs ~100-150 us of Python; copying it to the spool costs a few. `workbench serve` therefore
# spools every LLM span as its own record -- head ``{"kind": "otlp", "fmt": "pb"|"json", "id", "ts", "res",
# "scope", "anc", "pid"}`` and the span's own bytes (protobuf) or JSON as body -- before answering, and the
# ingester maps it (``record_row``), exactly like the wrapper spools response bytes and parses them later.
RECORD_KIND = "otlp"


@dataclass
class SpoolBatch:
    """One request's spans, ready for ``SpoolWriter.append(head, body)``."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    other: int = 0  # spans that are not model calls
    rejected: list[str] = field(default_factory=list)  # one line each: why a span was refused


PromptLookup = Callable[[str, int], "tuple[str, str] | None"]


def spool_records_protobuf(data: bytes, prompt_lookup: PromptLookup | None = None) -> SpoolBatch:
    """The spool records of an OTLP protobuf request; ValidationError if it does not decode.

    ``prompt_lookup(name, version) -> (prompt id, content hash)`` fills in what the wrapper records for a
    registered prompt when a span names one (``workbench.prompt.name`` / ``workbench.prompt.version``)."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, ValueError) as exc:
        raise ValidationError(f"body is not an OTLP ExportTraceServiceRequest in protobuf: {exc}") from None
    out = SpoolBatch()
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            nodes: dict[bytes, tuple[str, bool, int, bytes, bytes]] = {}
            prompts: dict[bytes, dict[str, Any]] = {}
            for s in spans:
                decisive = {kv.key: _pb_value(kv.value) for kv in s.attributes if kv.key in _DECISIVE}
                nodes[s.span_id] = (s.name, _is_llm(decisive), s.start_time_unix_nano, s.trace_id, s.parent_span_id)
                if "workbench.prompt.name" in decisive:
                    prompts[s.span_id] = decisive
            head_base = {"v": 1, "kind": RECORD_KIND, "fmt": "pb", "res": resource, "scope": scope_spans.scope.name}
            for s in spans:
                name, llm, start, trace, parent = nodes[s.span_id]
                if not llm:
                    out.other += 1
                    continue
                if len(trace) != 16 or len(s.span_id) != 8 or len(parent) not in (0, 8):
                    out.rejected.append(
                        f"span {s.span_id.hex() or '?'} ({name}): traceId must be 16 bytes, spanId and parentSpanId 8"
                    )
                    continue
                ancestors, parent_trace = _node_ancestry(trace, parent, nodes)
                head = {
                    **head_base,
                    "id": _trace_id(trace.hex(), s.span_id.hex(), start),
                    "ts": start / 1e9,
                    "anc": ancestors,
                    "pid": parent_trace,
                }
                if s.span_id in prompts and prompt_lookup is not None:
                    _add_prompt(head, prompts[s.span_id], prompt_lookup)
                out.records.append((orjson.dumps(head), s.SerializeToString()))
    return out


def spool_records_json(document: Any, prompt_lookup: PromptLookup | None = None) -> SpoolBatch:
    """The spool records of an OTLP/JSON request (already parsed); ValidationError for a malformed one."""
    if not isinstance(document, Mapping):
        raise ValidationError("OTLP/JSON body must be an object with resourceSpans")
    out = SpoolBatch()
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        if not isinstance(resource_spans, Mapping):
            raise ValidationError("every resourceSpans entry must be an object")
        resource = _json_attributes(_obj(resource_spans, "resource").get("attributes"))
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            if not isinstance(scope_spans, Mapping):
                raise ValidationError("every scopeSpans entry must be an object")
            scope = str(_obj(scope_spans, "scope").get("name") or "")
            nodes: dict[str, tuple[str, bool, int, str, str]] = {}
            prompts: dict[str, dict[str, Any]] = {}
            checked: list[tuple[Mapping[str, Any], str]] = []
            for s in _list(scope_spans, "spans"):
                if not isinstance(s, Mapping):
                    raise ValidationError("every span must be an object")
                trace = _json_id(_get(s, "traceId", "trace_id"), 16, "traceId")
                span_id = _json_id(_get(s, "spanId", "span_id"), 8, "spanId")
                parent_raw = _get(s, "parentSpanId", "parent_span_id")
                parent = _json_id(parent_raw, 8, "parentSpanId") if parent_raw else ""
                attributes = s.get("attributes")
                if attributes is not None and not isinstance(attributes, list):
                    raise ValidationError("attributes must be an array of {key, value}")
                decisive = {
                    kv["key"]: _json_value(kv.get("value"))
                    for kv in attributes or []
                    if isinstance(kv, Mapping) and kv.get("key") in _DECISIVE
                }
                start = _int(_get(s, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
                _int(_get(s, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
                nodes[span_id] = (str(s.get("name") or ""), _is_llm(decisive), start, trace, parent)
                if "workbench.prompt.name" in decisive:
                    prompts[span_id] = decisive
                checked.append((s, span_id))
            head_base = {"v": 1, "kind": RECORD_KIND, "fmt": "json", "res": resource, "scope": scope}
            for s, span_id in checked:
                _name, llm, start, trace, parent = nodes[span_id]
                if not llm:
                    out.other += 1
                    continue
                _json_attributes(s.get("attributes"))  # fully checked now, so ingest never meets a malformed one
                ancestors, parent_trace = _node_ancestry(trace, parent, nodes)
                head = {
                    **head_base,
                    "id": _trace_id(trace, span_id, start),
                    "ts": start / 1e9,
                    "anc": ancestors,
                    "pid": parent_trace,
                }
                if span_id in prompts and prompt_lookup is not None:
                    _add_prompt(head, prompts[span_id], prompt_lookup)
                out.records.append((orjson.dumps(head), orjson.dumps(s)))
    return out


def _add_prompt(head: dict[str, Any], attrs: Mapping[str, Any], lookup: PromptLookup) -> None:
    name, version = attrs.get("workbench.prompt.name"), attrs.get("workbench.prompt.version")
    try:
        version = int(version) if version is not None else None
    except (TypeError, ValueError):
        return
    if not isinstance(name, str) or version is None:
        return
    found = lookup(name, version)
    if found is not None:
        head["prompt"] = [found[0], name, version, found[1]]


def _node_ancestry(
    trace: Any, parent: Any, nodes: Mapping[Any, tuple[str, bool, int, Any, Any]]
) -> tuple[list[str], str | None]:
    """Ancestor names (nearest first) and the nearest LLM ancestor's trace id, within one request."""
    names: list[str] = []
    parent_trace: str | None = None
    seen = set()
    while parent and parent in nodes and parent not in seen:
        seen.add(parent)
        name, llm, start, parent_trace_id, grand = nodes[parent]
        if parent_trace_id != trace:
            break
        names.append(name)
        if parent_trace is None and llm:
            parent_trace = _trace_id(_hex(trace), _hex(parent), start)
        parent = grand
    return names, parent_trace


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value


def record_row(meta: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The ``traces`` row of one spooled OTLP span record (called by ``parse.record_to_row`` at ingest)."""
    if meta.get("fmt") == "pb":
        from opentelemetry.proto.trace.v1.trace_pb2 import Span

        s = Span.FromString(body)
        span = OtelSpan(
            trace_id=s.trace_id.hex(),
            span_id=s.span_id.hex(),
            parent_span_id=s.parent_span_id.hex() or None,
            name=s.name,
            start_ns=s.start_time_unix_nano,
            end_ns=s.end_time_unix_nano,
            status_code=s.status.code,
            status_message=s.status.message,
            kind=s.kind,
            attributes=_pb_attributes(s.attributes),
            events=[(e.name, e.time_unix_nano, _pb_attributes(e.attributes)) for e in s.events],
        )
    else:
        [span] = spans_from_json({"resourceSpans": [{"scopeSpans": [{"spans": [orjson.loads(body)]}]}]})
    span.resource = meta.get("res") or {}
    span.scope = meta.get("scope") or ""
    mapped = span_record(span, ancestry=(list(meta.get("anc") or []), meta.get("pid")))
    resolved = meta.get("prompt")
    if resolved and mapped["ctx"].get("prompt"):  # the registered prompt's id and hash, found when it arrived
        mapped["ctx"]["prompt"] = tuple(
            given if given is not None else known
            for given, known in zip(mapped["ctx"]["prompt"], resolved, strict=True)
        )
    return record_to_row(mapped, b"")


# -- mapping -----------------------------------------------------------------------------------------------
_LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion", "responses"})


def is_llm_span(span: OtelSpan) -> bool:
    """A model call (chat / completion), in any of the conventions read; tools, agents, embeddings are not."""
    return _is_llm(span.attributes)


# The attributes that decide whether a span is a model call (read on the receive path without decoding the rest).
_DECISIVE = frozenset(
    {
        "gen_ai.operation.name",
        "openinference.span.kind",
        "llm.request.type",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.prompt.0.content",
        # not decisive: read on the same pass to resolve a named prompt's id and hash
        "workbench.prompt.name",
        "workbench.prompt.version",
    }
)


def _is_llm(a: Mapping[str, Any]) -> bool:
    operation = a.get("gen_ai.operation.name")
    if operation is not None:
        return operation in _LLM_OPERATIONS
    if a.get("openinference.span.kind") is not None:
        return str(a["openinference.span.kind"]).upper() == "LLM"
    if a.get("llm.request.type") is not None:  # OpenLLMetry, older
        return a["llm.request.type"] in ("chat", "completion")
    return any(k in a for k in ("gen_ai.request.model", "gen_ai.response.model", "gen_ai.prompt.0.content"))


def span_trace_id(span: OtelSpan) -> str:
    """The workbench trace id of a span: its start in ms (time order), then 14 hex of a hash of its ids."""
    return _trace_id(span.trace_id, span.span_id, span.start_ns)


def _trace_id(trace_hex: str, span_hex: str, start_ns: int) -> str:
    digest = hashlib.blake2b(f"{trace_hex}:{span_hex}".encode(), digest_size=7).hexdigest()
    return f"{max(start_ns, 0) // 1_000_000:012x}{digest}"


@dataclass
class MappedSpans:
    """What became of one request's spans: records to spool (wrapper-shaped meta dicts) and the others."""

    records: list[dict[str, Any]]
    other: int = 0  # spans that are not model calls (kept only as ancestry of the ones that are)
    rejected: list[str] = field(default_factory=list)  # one line each: why a span could not be mapped

    def rows(self) -> list[dict[str, Any]]:
        """The ``traces`` rows these records become (what ingest stores)."""
        return [record_to_row(meta, b"") for meta in self.records]


def map_spans(spans: list[OtelSpan]) -> MappedSpans:
    """Every LLM span of one request as a spool record; parents resolved within the request."""
    by_id = {s.span_id: s for s in spans}
    out = MappedSpans([])
    for span in spans:
        if not is_llm_span(span):
            out.other += 1
            continue
        try:
            out.records.append(span_record(span, by_id))
        except (ValueError, TypeError, KeyError) as exc:
            out.rejected.append(f"span {span.span_id} ({span.name}): {exc}")
    return out


def span_record(
    span: OtelSpan,
    by_id: Mapping[str, OtelSpan] | None = None,
    *,
    ancestry: tuple[list[str], str | None] | None = None,
) -> dict[str, Any]:
    """The wrapper-shaped spool ``meta`` of one LLM span (``record_to_row(meta, b"")`` is its row).

    ``by_id``: the other spans of its request (for its ancestors); or ``ancestry`` = (ancestor names,
    nearest LLM ancestor's trace id) when that was worked out on the receive path."""
    reader = _Attributes(span)
    req, op = _request(reader)
    parsed = _response(reader, op)
    stream = bool(req.get("stream")) or bool(reader.first("gen_ai.is_streaming", "llm.is_streaming"))
    ancestors, parent = ancestry if ancestry is not None else _ancestry(span, by_id or {})
    error = _error(span, reader)
    meta: dict[str, Any] = {
        "v": 1,
        "id": span_trace_id(span),
        "ts": span.start_ns / 1e9,
        "op": op,
        "base": reader.first("gen_ai.openai.api_base", "url.full") or _server(reader),
        "lat": (span.end_ns - span.start_ns) / 1e6 if span.end_ns >= span.start_ns else None,
        "ttft": _ttft(span, reader),
        "stream": stream,
        "status": reader.first("http.response.status_code", "http.status_code"),
        "req": req,
        "parsed": parsed,
        "ctx": _context(reader, parent),
        "src": "otlp",
    }
    if error is not None:
        meta["err"] = error
    elif meta["status"] is None and parsed.get("provider_response_id"):
        meta["status"] = 200  # the provider answered with a response (the SDKs raise on anything but 2xx)
    meta["ctx"]["metadata"] = {
        **meta["ctx"].get("metadata", {}),
        "otel": {
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            "parent_span_id": span.parent_span_id,
            "name": span.name,
            "scope": span.scope,
            "ancestors": ancestors,
            "resource": span.resource,
            "attributes": reader.unused(),
        },
    }
    return meta


class _Attributes:
    """Attribute look-ups that remember what was used, so the rest can be kept as metadata."""

    def __init__(self, span: OtelSpan) -> None:
        self.values: dict[str, Any] = dict(span.attributes)
        # The GenAI "operation details" event (and older per-message events) carry content as attributes.
        for name, _t, attrs in span.events:
            if name == "gen_ai.client.inference.operation.details":
                for key, value in attrs.items():
                    self.values.setdefault(key, value)
        self.events = span.events
        self.used: set[str] = set()

    def first(self, *names: str) -> Any:
        for name in names:
            value = self.values.get(name)
            if value is not None:
                self.used.add(name)
                return value
        return None

    def json(self, *names: str) -> Any:
        value = self.first(*names)
        if isinstance(value, str):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                return value
        return value

    def prefixed(self, prefix: str) -> dict[str, Any]:
        found = {k[len(prefix) :]: v for k, v in self.values.items() if k.startswith(prefix)}
        self.used.update(prefix + k for k in found)
        return found

    def unused(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k not in self.used}


_PARAMS = (
    ("temperature", ("gen_ai.request.temperature", "llm.temperature")),
    ("top_p", ("gen_ai.request.top_p", "llm.top_p")),
    ("max_tokens", ("gen_ai.request.max_tokens", "llm.request.max_tokens")),
    ("frequency_penalty", ("gen_ai.request.frequency_penalty", "llm.frequency_penalty")),
    ("presence_penalty", ("gen_ai.request.presence_penalty", "llm.presence_penalty")),
    ("stop", ("gen_ai.request.stop_sequences",)),
    ("seed", ("gen_ai.request.seed", "gen_ai.openai.request.seed")),
    ("n", ("gen_ai.request.choice.count",)),
    ("user", ("gen_ai.user", "gen_ai.request.user")),
    ("response_format", ("gen_ai.openai.request.response_format",)),
    ("service_tier", ("gen_ai.openai.request.service_tier",)),
)


def _request(a: _Attributes) -> tuple[dict[str, Any], str]:
    """The request body the app sent, as the wrapper would have recorded it (or as near as the span says)."""
    if str(a.values.get("input.mime_type", "")).endswith("json"):
        body = a.json("input.value")
        if isinstance(body, dict) and ("messages" in body or "input" in body):
            a.used.add("input.mime_type")
            op = "chat" if "messages" in body else "responses"
            return body, op
    req: dict[str, Any] = {}
    model = a.first("gen_ai.request.model", "llm.request.model")
    invocation = a.json("llm.invocation_parameters")
    if isinstance(invocation, dict):
        model = model or invocation.get("model")
        req.update({k: v for k, v in invocation.items() if k != "model"})
    if model is not None:
        req["model"] = model
    for name, keys in _PARAMS:
        value = a.first(*keys)
        if value is not None and name not in req:
            req[name] = _json_if_text(value) if name == "response_format" else value
    tools = a.json("gen_ai.tool.definitions", "llm.tools")
    if tools:
        req["tools"] = tools
    req["messages"] = _input_messages(a)
    return req, "chat"


def _json_if_text(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _input_messages(a: _Attributes) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = a.json("gen_ai.system_instructions")
    if system:
        parts = system if isinstance(system, list) else [{"type": "text", "content": system}]
        messages.append({"role": "system", "content": _parts_text(parts)})
    current = a.json("gen_ai.input.messages")
    if isinstance(current, list):
        return messages + [_from_parts(m) for m in current if isinstance(m, dict)]
    indexed = _indexed(a.prefixed("gen_ai.prompt."))
    if indexed:
        return messages + [_from_flat(m) for m in indexed]
    openinference = _indexed(a.prefixed("llm.input_messages."))
    if openinference:
        return messages + [_from_openinference(m) for m in openinference]
    for name, _t, attrs in a.events:  # the older event form: one span event per message
        role = _EVENT_ROLES.get(name)
        if role is not None:
            message: dict[str, Any] = {
                "role": attrs.get("role") or role,
                "content": _json_if_text(attrs.get("content")),
            }
            calls = _json_if_text(attrs.get("tool_calls"))
            if calls:
                message["tool_calls"] = [_openai_call(c) for c in calls if isinstance(c, dict)]
            if role == "tool" and attrs.get("id"):
                message["tool_call_id"] = attrs["id"]
            messages.append(message)
    return messages


_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def _indexed(flat: dict[str, Any]) -> list[dict[str, Any]]:
    """{"0.role": r, "0.content": c, "1.role": ...} -> [{"role": r, "content": c}, ...] (nested by dots)."""
    items: dict[int, dict[str, Any]] = {}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        if not head.isdigit() or not rest:
            continue
        _nest(items.setdefault(int(head), {}), rest.split("."), value)
    return [items[i] for i in sorted(items)]


def _nest(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target[path[-1]] = value


def _listed(value: Any) -> list[Any]:
    """A nested {"0": ..., "1": ...} from dotted indexes, as a list in index order."""
    if isinstance(value, dict):
        return [value[k] for k in sorted((k for k in value if k.isdigit()), key=int)]
    return value if isinstance(value, list) else []


def _parts_text(parts: list[Any]) -> str:
    return "".join(str(p.get("content", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text")


def _from_parts(message: dict[str, Any]) -> dict[str, Any]:
    """A GenAI semconv message (role + typed parts) as an OpenAI chat message."""
    role = message.get("role") or "user"
    parts = message.get("parts") if isinstance(message.get("parts"), list) else []
    out: dict[str, Any] = {"role": role}
    texts = [p for p in parts if isinstance(p, dict) and p.get("type") == "text"]
    calls = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call"]
    responses = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call_response"]
    others = [
        p for p in parts if isinstance(p, dict) and p.get("type") not in ("text", "tool_call", "tool_call_response")
    ]
    if responses and role == "tool":
        out["tool_call_id"] = responses[0].get("id")
        result = responses[0].get("response", responses[0].get("result"))
        out["content"] = result if isinstance(result, str) else orjson.dumps(result).decode()
        return out
    if others:
        out["content"] = [{"type": "text", "text": p.get("content", "")} for p in texts] + others
    elif texts or not calls:
        out["content"] = _parts_text(texts)
    else:
        out["content"] = None
    if calls:
        out["tool_calls"] = [_openai_call(c) for c in calls]
    if message.get("name"):
        out["name"] = message["name"]
    return out


def _openai_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    arguments = function.get("arguments")
    if not isinstance(arguments, str) and arguments is not None:
        arguments = orjson.dumps(arguments).decode()
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": function.get("name"), "arguments": arguments},
    }


def _from_flat(message: dict[str, Any]) -> dict[str, Any]:
    """An older ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` message."""
    out: dict[str, Any] = {"role": message.get("role") or "user", "content": _json_if_text(message.get("content"))}
    calls = _listed(message.get("tool_calls"))
    if calls:
        out["tool_calls"] = [_openai_call(c) for c in calls if isinstance(c, dict)]
    if message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    return out


def _from_openinference(entry: dict[str, Any]) -> dict[str, Any]:
    message = entry.get("message") or {}
    out: dict[str, Any] = {"role": message.get("role") or "user"}
    contents = _listed(message.get("contents"))
    if message.get("content") is not None or not contents:
        out["content"] = message.get("content")
    else:
        out["content"] = [
            {"type": "text", "text": (c.get("message_content") or {}).get("text")}
            for c in contents
            if isinstance(c, dict)
        ]
    calls = []
    for call in _listed(message.get("tool_calls")):
        inner = (call or {}).get("tool_call") or {}
        calls.append(_openai_call({"id": inner.get("id"), **(inner.get("function") or {})}))
    if calls:
        out["tool_calls"] = calls
    if message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    if message.get("name"):
        out["name"] = message["name"]
    return out


def _response(a: _Attributes, op: str) -> dict[str, Any]:
    """The response-side fields (what parse.parse_output returns for a wrapped call)."""
    parsed: dict[str, Any] = {}
    if str(a.values.get("output.mime_type", "")).endswith("json"):
        body = a.first("output.value")
        if isinstance(body, str):
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                document = None
            if isinstance(document, dict) and ("choices" in document or "output" in document):
                parsed = parse_output({"op": "chat" if "choices" in document else "responses"}, body.encode())
                a.used.add("output.mime_type")
    text, calls = _output_message(a)
    fill = {
        "provider_response_id": a.first("gen_ai.response.id"),
        "model_resolved": a.first("gen_ai.response.model", "llm.model_name", "llm.response.model"),
        "system_fingerprint": a.first(
            "gen_ai.openai.response.system_fingerprint", "openai.response.system_fingerprint"
        ),
        "output_text": text,
        "tool_calls": calls,
        "prompt_tokens": a.first("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
        "completion_tokens": a.first(
            "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"
        ),
        "total_tokens": a.first("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total"),
    }
    for key, value in fill.items():
        if parsed.get(key) is None and value is not None:
            parsed[key] = value
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        if isinstance(parsed.get(key), float) and parsed[key].is_integer():
            parsed[key] = int(parsed[key])
    if parsed.get("total_tokens") is None and None not in (
        parsed.get("prompt_tokens"),
        parsed.get("completion_tokens"),
    ):
        parsed["total_tokens"] = parsed["prompt_tokens"] + parsed["completion_tokens"]
    return parsed


def _output_message(a: _Attributes) -> tuple[str | None, list[dict[str, Any]] | None]:
    current = a.json("gen_ai.output.messages")
    if isinstance(current, list) and current and isinstance(current[0], dict):
        message = _from_parts(current[0])
    else:
        indexed = _indexed(a.prefixed("gen_ai.completion."))
        if indexed:
            message = _from_flat(indexed[0])
        else:
            openinference = _indexed(a.prefixed("llm.output_messages."))
            if openinference:
                message = _from_openinference(openinference[0])
            else:
                message = _choice_event(a)
                if message is None:
                    return None, None
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content, message.get("tool_calls") or None


def _choice_event(a: _Attributes) -> dict[str, Any] | None:
    for name, _t, attrs in a.events:
        if name == "gen_ai.choice" and str(attrs.get("index", 0)) == "0":
            message = _json_if_text(attrs.get("message"))
            if isinstance(message, dict):
                out = {"content": _json_if_text(message.get("content"))}
                calls = _json_if_text(message.get("tool_calls"))
                if calls:
                    out["tool_calls"] = [_openai_call(c) for c in calls if isinstance(c, dict)]
                return out
    return None


def _server(a: _Attributes) -> str | None:
    host = a.first("server.address")
    if host is None:
        return None
    port = a.first("server.port")
    return f"{host}:{port}" if port else str(host)


def _ttft(span: OtelSpan, a: _Attributes) -> float | None:
    value = a.first("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
    if isinstance(value, int | float):
        return float(value) * 1000.0  # semconv: seconds
    for name, at, _attrs in span.events:
        if name in ("First Token Stream Event", "gen_ai.content.first_chunk") and at >= span.start_ns:
            return (at - span.start_ns) / 1e6
    return None


def _error(span: OtelSpan, a: _Attributes) -> dict[str, Any] | None:
    if span.status_code != STATUS_ERROR:
        return None
    kind = a.first("error.type")
    message = span.status_message
    for name, _t, attrs in span.events:
        if name == "exception":
            kind = kind or attrs.get("exception.type")
            message = message or attrs.get("exception.message") or ""
    status = a.first("http.response.status_code", "http.status_code")
    if status is None and message:  # the OpenAI SDKs' APIStatusError: "Error code: 429 - {...}"
        found = _STATUS_IN_MESSAGE.match(message)
        status = int(found.group(1)) if found else None
    return {"type": str(kind or "Error").rsplit(".", 1)[-1], "message": message or None, "status": status}


_STATUS_IN_MESSAGE = re.compile(r"^Error code: (\d{3})\b")


def _context(a: _Attributes, parent: str | None) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    session = a.first("session.id", "gen_ai.conversation.id", "traceloop.association.properties.session_id")
    user = a.first("user.id", "enduser.id", "traceloop.association.properties.user_id")
    if session is not None:
        ctx["session_id"] = str(session)
    if user is not None:
        ctx["user_id"] = str(user)
    explicit_parent = a.first("workbench.parent_id")
    if explicit_parent or parent:
        ctx["parent_id"] = str(explicit_parent or parent)
    name = a.first("workbench.prompt.name")
    if name is not None:
        version = a.first("workbench.prompt.version")
        ctx["prompt"] = (
            a.first("workbench.prompt.id"),
            str(name),
            int(version) if version is not None else None,
            a.first("workbench.prompt.hash"),
        )
    variables = a.json("workbench.prompt.variables", "llm.prompt_template.variables")
    if isinstance(variables, dict):
        ctx["variables"] = variables
    variant = a.first("workbench.variant")
    if variant is not None:
        ctx["variant"] = str(variant)
    tags = a.first("workbench.tags", "tag.tags")
    if tags:
        ctx["tags"] = [str(t) for t in (tags if isinstance(tags, list | tuple) else [tags])]
    metadata = a.json("metadata", "workbench.metadata")
    ctx["metadata"] = dict(metadata) if isinstance(metadata, dict) else {}
    return ctx


def _ancestry(span: OtelSpan, by_id: Mapping[str, OtelSpan]) -> tuple[list[str], str | None]:
    """Names of the span's ancestors in this request (nearest first) and its nearest LLM ancestor's trace id."""
    names: list[str] = []
    parent_trace: str | None = None
    seen = {span.span_id}
    current = by_id.get(span.parent_span_id or "")
    while current is not None and current.span_id not in seen and current.trace_id == span.trace_id:
        seen.add(current.span_id)
        names.append(current.name)
        if parent_trace is None and is_llm_span(current):
            parent_trace = span_trace_id(current)
        current = by_id.get(current.parent_span_id or "")
    return names, parent_trace
