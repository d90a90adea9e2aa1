"""Golden sets: versioned files with provenance, tamper checks, splits, and exporters."""

from workbench.golden.exporters import EXPORTERS, ExportResult, ExportSource, export, get_exporter
from workbench.golden.items import GoldenItem, Provenance, coerce_items, from_candidate, item_id_for
from workbench.golden.manifest import Manifest, VersionInfo
from workbench.golden.sets import (
    GOLDEN_DIR,
    BuildResult,
    ChangedItem,
    GoldenVersion,
    SetDiff,
    SetSummary,
    build_version,
    diff,
    diff_items,
    find_item,
    list_sets,
    load_manifest,
    load_version,
    parse_ref,
)
from workbench.golden.split import Leak, Split, leakage_check, resolve_leaks, split_items
from workbench.golden.verify import Problem, VerifyReport, verify

__all__ = [
    "EXPORTERS",
    "GOLDEN_DIR",
    "BuildResult",
    "ChangedItem",
    "ExportResult",
    "ExportSource",
    "GoldenItem",
    "GoldenVersion",
    "Leak",
    "Manifest",
    "Problem",
    "Provenance",
    "SetDiff",
    "SetSummary",
    "Split",
    "VerifyReport",
    "VersionInfo",
    "build_version",
    "coerce_items",
    "diff",
    "diff_items",
    "export",
    "find_item",
    "from_candidate",
    "get_exporter",
    "item_id_for",
    "leakage_check",
    "list_sets",
    "load_manifest",
    "load_version",
    "parse_ref",
    "resolve_leaks",
    "split_items",
    "verify",
]
