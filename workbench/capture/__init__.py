"""Capture: wrap an OpenAI client, spool each call, ingest the spool into the store."""

from .context import CONTEXT_KEYS, build_context
from .ingest import BackgroundIngester, IngestStats, ingest_spool
from .parse import parse_output, record_to_row, split_payload
from .recorder import Recorder
from .spool import SpoolWriter, iter_payloads, list_segments, scan_segment
from .wrap import trace_id, wrap_client

__all__ = [
    "CONTEXT_KEYS", "BackgroundIngester", "IngestStats", "Recorder", "SpoolWriter", "build_context",
    "ingest_spool", "iter_payloads", "list_segments", "parse_output", "record_to_row", "scan_segment",
    "split_payload", "trace_id", "wrap_client",
]
