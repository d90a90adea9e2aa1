"""Golden-set exporters: fine-tuning files, preference pairs, HF datasets, Langfuse, CSV."""

from workbench.golden.exporters.base import ExportResult, ExportSource, SkippedItem, as_source
from workbench.golden.exporters.csv import export_csv, read_csv
from workbench.golden.exporters.hf import export_hf
from workbench.golden.exporters.langfuse import export_langfuse
from workbench.golden.exporters.openai_chat import (
    estimate_tokens,
    export_openai_chat,
    validate_chat_example,
)
from workbench.golden.exporters.preference import export_openai_preference, export_trl_dpo
from workbench.golden.exporters.registry import EXPORTERS, export, get_exporter

__all__ = [
    "EXPORTERS",
    "ExportResult",
    "ExportSource",
    "SkippedItem",
    "as_source",
    "estimate_tokens",
    "export",
    "export_csv",
    "export_hf",
    "export_langfuse",
    "export_openai_chat",
    "export_openai_preference",
    "export_trl_dpo",
    "get_exporter",
    "read_csv",
    "validate_chat_example",
]
