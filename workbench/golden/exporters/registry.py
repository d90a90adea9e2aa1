"""Format name -> exporter, and ``export()``: the one entry point the CLI calls.

The store's immutable export log is written by the caller: pass ``on_export`` (called once with
the ``ExportResult`` after the output is complete) or call ``result.to_record()`` yourself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.errors import ValidationError
from workbench.golden.exporters.base import Exporter, ExportResult, ExportSource, as_source
from workbench.golden.exporters.bedrock import export_anthropic_bedrock
from workbench.golden.exporters.csv import export_csv
from workbench.golden.exporters.hf import export_hf
from workbench.golden.exporters.langfuse import export_langfuse
from workbench.golden.exporters.openai_chat import export_openai_chat
from workbench.golden.exporters.preference import export_openai_preference, export_trl_dpo
from workbench.golden.exporters.sharegpt import export_sharegpt, export_together_chat
from workbench.golden.exporters.trl import export_trl_kto, export_trl_sft
from workbench.golden.items import GoldenItem
from workbench.golden.sets import GoldenVersion

__all__ = ["EXPORTERS", "export", "get_exporter"]

EXPORTERS: dict[str, Exporter] = {
    "openai-chat": export_openai_chat,
    "openai-preference": export_openai_preference,
    "trl-dpo": export_trl_dpo,
    "trl-sft": export_trl_sft,
    "trl-kto": export_trl_kto,
    "anthropic-bedrock": export_anthropic_bedrock,
    "together-chat": export_together_chat,
    "sharegpt": export_sharegpt,
    "hf": export_hf,
    "langfuse": export_langfuse,
    "csv": export_csv,
}


def get_exporter(fmt: str) -> Exporter:
    try:
        return EXPORTERS[fmt]
    except KeyError:
        raise ValidationError(f"unknown export format {fmt!r} (known: {', '.join(EXPORTERS)})") from None


def export(
    source: GoldenVersion | ExportSource | Iterable[GoldenItem | Mapping[str, Any]],
    fmt: str,
    out: str | Path | None,
    *,
    on_export: Callable[[ExportResult], None] | None = None,
    **options: Any,
) -> ExportResult:
    """Export ``source`` as ``fmt`` to ``out``; unknown options are a ``ValidationError``."""
    exporter = get_exporter(fmt)
    prepared = as_source(source)
    try:
        result = exporter(prepared, out, **options)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise ValidationError(f"{fmt} export: {exc}") from None
        raise
    if on_export is not None:
        on_export(result)
    return result
