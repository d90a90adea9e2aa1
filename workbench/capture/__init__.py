"""Capture: wrap an OpenAI client, spool each call, ingest the spool into the store.

Names resolve on first use (PEP 562): the ingest sidecar and the CLI import only the part they need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import CONTEXT_KEYS, build_context
    from .ingest import BackgroundIngester, IngestStats, ingest_spool
    from .parse import parse_output, record_to_row, split_payload
    from .recorder import Recorder
    from .spool import SpoolWriter, iter_payloads, list_segments, scan_segment
    from .wrap import trace_id, wrap_client

__all__ = [
    "CONTEXT_KEYS",
    "BackgroundIngester",
    "IngestStats",
    "Recorder",
    "SpoolWriter",
    "build_context",
    "ingest_spool",
    "iter_payloads",
    "list_segments",
    "parse_output",
    "record_to_row",
    "scan_segment",
    "split_payload",
    "trace_id",
    "wrap_client",
]

_LAZY = {
    "CONTEXT_KEYS": ".context",
    "build_context": ".context",
    "BackgroundIngester": ".ingest",
    "IngestStats": ".ingest",
    "ingest_spool": ".ingest",
    "parse_output": ".parse",
    "record_to_row": ".parse",
    "split_payload": ".parse",
    "Recorder": ".recorder",
    "SpoolWriter": ".spool",
    "iter_payloads": ".spool",
    "list_segments": ".spool",
    "scan_segment": ".spool",
    "trace_id": ".wrap",
    "wrap_client": ".wrap",
}


def __getattr__(name: str) -> Any:
    source = _LAZY.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value
