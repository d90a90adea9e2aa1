"""``langfuse``: a Langfuse dataset whose items point back at their source traces.

Uses the langfuse SDK's REST client (``LangfuseAPI``, the same object ``Langfuse().api`` wraps)
rather than the ``Langfuse`` tracing client: an export needs two POST endpoints, not an
OpenTelemetry provider, background upload threads and an atexit hook. A ready client can be
passed as ``api`` (a ``LangfuseAPI`` or a ``Langfuse`` instance). Credentials otherwise come from
the arguments or the SDK's usual environment variables.

Item ids are derived from (dataset name, golden item id), and Langfuse upserts items on their
id, so re-running an interrupted export completes it without duplicates. ``out`` is the dataset
name (default ``NAME-vN``).
"""

from __future__ import annotations

import hashlib
import os
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import orjson

from workbench.errors import ConfigError, ExportError, ValidationError
from workbench.golden.exporters.base import ExportResult, ExportSource, make_result
from workbench.golden.items import GoldenItem

__all__ = ["dataset_item_id", "export_langfuse", "item_payload"]

DEFAULT_BASE_URL = "https://cloud.langfuse.com"  # the SDK's own default


def dataset_item_id(dataset_name: str, item_id: str) -> str:
    """Deterministic and unique per dataset (Langfuse item ids are project-wide)."""
    return "wb-" + hashlib.sha256(f"{dataset_name}\0{item_id}".encode()).hexdigest()[:32]


def item_payload(
    item: GoldenItem, source: ExportSource, dataset_name: str, *, link_traces: bool = True
) -> dict[str, Any]:
    """Keyword arguments for ``dataset_items.create`` for one golden item."""
    p = item.provenance
    item_input: dict[str, Any] = {"messages": item.input}
    if item.tools:
        item_input["tools"] = item.tools
    expected: Any = item.expected_output
    if item.expected_tool_calls:
        expected = {"role": "assistant", "content": item.expected_output, "tool_calls": item.expected_tool_calls}
    metadata = {
        "golden_set": source.name,
        "golden_version": source.version,
        "golden_item_id": item.id,
        "candidate_id": p.candidate_id,
        "trace_ids": p.trace_ids,
        "feedback_ids": p.feedback_ids,
        "decision_ids": p.decision_ids,
        "prompt": p.prompt,
        "model": p.model,
        "rubric_ids": p.rubric_ids,
        "labels": item.labels,
        "notes": item.notes,
        "original_output": item.original_output,
    }
    payload: dict[str, Any] = {
        "dataset_name": dataset_name,
        "id": dataset_item_id(dataset_name, item.id),
        "input": item_input,
        "expected_output": expected,
        "metadata": metadata,
    }
    if link_traces and p.source_trace_id:
        payload["source_trace_id"] = p.source_trace_id
    return payload


def _client(
    base_url: str | None, public_key: str | None, secret_key: str | None, timeout: float
) -> tuple[Any, Any, str]:
    try:
        import httpx
        from langfuse.api import LangfuseAPI
    except ImportError as exc:
        raise ConfigError(
            f"langfuse export needs the langfuse SDK: pip install 'workbench[langfuse]' ({exc})"
        ) from None
    sdk_version = importlib_metadata.version("langfuse")
    public_key = public_key or os.environ.get("LANGFUSE_PUBLIC_KEY")
    secret_key = secret_key or os.environ.get("LANGFUSE_SECRET_KEY")
    if not public_key or not secret_key:
        raise ConfigError("langfuse export needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (or arguments)")
    base = (
        base_url or os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST") or DEFAULT_BASE_URL
    ).rstrip("/")
    http = httpx.Client(timeout=timeout)
    api = LangfuseAPI(
        base_url=base,
        username=public_key,
        password=secret_key,
        x_langfuse_sdk_name="python",
        x_langfuse_sdk_version=sdk_version,
        x_langfuse_public_key=public_key,
        httpx_client=http,
    )
    return api, http, base


def export_langfuse(
    source: ExportSource,
    out: str | Path | None = None,
    /,
    *,
    base_url: str | None = None,
    public_key: str | None = None,
    secret_key: str | None = None,
    api: Any = None,
    description: str | None = None,
    link_traces: bool = True,
    timeout: float = 30.0,
) -> ExportResult:
    """Create (or update) the dataset and upsert one item per golden item."""
    if out:
        dataset_name = str(out)
    elif source.name and source.version:
        dataset_name = f"{source.name}-v{source.version}"
    else:
        raise ValidationError("langfuse export of ad-hoc items needs a dataset name (out)")
    http = None
    if api is None:
        api, http, base = _client(base_url, public_key, secret_key, timeout)
    else:
        api = getattr(api, "api", api)  # a Langfuse client wraps the REST client as .api
        base = base_url or "langfuse"
    payloads = [item_payload(item, source, dataset_name, link_traces=link_traces) for item in source.items]
    created = 0
    try:
        dataset = api.datasets.create(
            name=dataset_name,
            description=description or f"workbench golden set {source.label}",
            metadata={
                "workbench_golden_set": source.name,
                "version": source.version,
                "file_sha256": source.info.file_sha256 if source.info else None,
                "item_count": len(payloads),
            },
        )
        for payload in payloads:
            api.dataset_items.create(**payload)
            created += 1
    except Exception as exc:
        reason = (str(exc).splitlines() or [""])[0]
        raise ExportError(
            f"langfuse export to {base} dataset {dataset_name!r} failed after {created} of {len(payloads)} "
            f"items: {type(exc).__name__}: {reason}; re-running is safe (item ids are deterministic)"
        ) from exc
    finally:
        if http is not None:
            http.close()
    sha = hashlib.sha256(b"".join(orjson.dumps(p, option=orjson.OPT_SORT_KEYS) + b"\n" for p in payloads))
    return make_result(
        "langfuse",
        source,
        f"{base}#dataset={dataset_name}",
        written=list(source.items),
        skipped=[],
        sha256=sha.hexdigest(),
        stats={"dataset_name": dataset_name, "dataset_id": getattr(dataset, "id", None)},
    )
