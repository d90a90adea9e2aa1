"""Imports: history from elsewhere into the store as the same trace rows the wrapper records.

- ``jsonl``: the JSONL trace format (``trace_format``), `workbench import openai-jsonl` and `export-traces`;
- ``langfuse``: a Langfuse project through its public API (traces, generations, scores as feedback);
- ``otlp``: OTLP/JSON files as the OpenTelemetry Collector's file exporter writes them.

All write through ``batch.TraceBatch``: idempotent, resumable, one report of what was skipped and why.
"""
