"""``hf``: a Hugging Face ``datasets`` directory (``save_to_disk``), train/test by item hash.

Columns are plain types so ``load_from_disk`` (and Arrow) never has to guess: a readable
``input`` (role + text per message) for browsing, and ``*_json`` columns holding the exact
messages, tools and tool calls, so ``item_from_row`` rebuilds the golden item losslessly. The
version's manifest entry goes into ``DatasetInfo.description`` as JSON (every split carries it).
The directory is built next to the target and renamed into place; only an earlier dataset
directory is ever replaced.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from workbench.golden.atomic import atomic_dir, sha256_tree
from workbench.golden.exporters.base import ExportResult, ExportSource, make_result, require_out
from workbench.golden.items import GoldenItem, Provenance, message_text
from workbench.golden.split import Split, leakage_check, resolve_leaks, split_items

__all__ = ["export_hf", "item_from_row", "manifest_from_info"]

_LIST_FIELDS = ("trace_ids", "feedback_ids", "decision_ids", "rubric_ids")


def _features() -> Any:
    from datasets import Features, List, Value

    text = Value("string")
    return Features(
        {
            "id": text,
            "input": List({"role": text, "content": text}),
            "input_json": text,
            "tools_json": text,
            "expected_output": text,
            "expected_tool_calls_json": text,
            "original_output": text,
            "labels": List(text),
            "notes": text,
            "candidate_id": text,
            "trace_ids": List(text),
            "feedback_ids": List(text),
            "decision_ids": List(text),
            "prompt": text,
            "model": text,
            "rubric_ids": List(text),
        }
    )


def _json_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _row(item: GoldenItem) -> dict[str, Any]:
    p = item.provenance
    return {
        "id": item.id,
        "input": [{"role": m["role"], "content": message_text(m)} for m in item.input],
        "input_json": _json_or_none(item.input),
        "tools_json": _json_or_none(item.tools),
        "expected_output": item.expected_output,
        "expected_tool_calls_json": _json_or_none(item.expected_tool_calls),
        "original_output": item.original_output,
        "labels": item.labels,
        "notes": item.notes,
        "candidate_id": p.candidate_id,
        **{name: getattr(p, name) for name in _LIST_FIELDS},
        "prompt": p.prompt,
        "model": p.model,
    }


def item_from_row(row: Mapping[str, Any]) -> GoldenItem:
    """The golden item a dataset row was made from (the id is re-derived and checked)."""

    def loads(key: str) -> Any:
        return None if row[key] is None else orjson.loads(row[key])

    return GoldenItem(
        id=row["id"],
        input=loads("input_json"),
        tools=loads("tools_json"),
        expected_output=row["expected_output"],
        expected_tool_calls=loads("expected_tool_calls_json"),
        original_output=row["original_output"],
        labels=list(row["labels"]),
        notes=row["notes"],
        provenance=Provenance(
            candidate_id=row["candidate_id"],
            prompt=row["prompt"],
            model=row["model"],
            **{name: list(row[name]) for name in _LIST_FIELDS},
        ),
    )


def manifest_from_info(info: Any) -> dict[str, Any]:
    """The JSON this exporter put in ``DatasetInfo.description``."""
    return orjson.loads(info.description)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars from save_to_disk; restore whatever the caller had set."""
    from datasets.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _is_hf_dir(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def export_hf(
    source: ExportSource,
    out: str | Path | None,
    /,
    *,
    test_fraction: float | None = 0.2,
    salt: str = "",
    leakage_threshold: float = 90.0,
    move_leaks_to_train: bool = False,
    push_to_hub: str | None = None,
) -> ExportResult:
    """Save a ``DatasetDict`` (train/test) or, with ``test_fraction=None``, a single ``Dataset``; with
    ``push_to_hub="NAMESPACE/NAME"`` also upload it as a Hub dataset repository (exporters/hub.py)."""
    from datasets import Dataset, DatasetDict, DatasetInfo

    path = require_out("hf", out)
    if push_to_hub is not None:
        from workbench.golden.exporters.hub import check_repo_id

        check_repo_id(push_to_hub)
    features = _features()
    warnings: list[str] = []
    split: Split | None = None
    if test_fraction is not None:
        split = split_items(source.items, test_fraction=test_fraction, salt=salt)
        leaks = leakage_check(split, threshold=leakage_threshold)
        if leaks and move_leaks_to_train:
            before = len(split.test)
            split = resolve_leaks(split, threshold=leakage_threshold)
            warnings.append(f"moved {before - len(split.test)} near-duplicate test items into train")
        elif leaks:
            worst = leaks[0]
            warnings.append(
                f"leakage: {len({leak.test_id for leak in leaks})} test items have near-duplicate inputs in train "
                f"(e.g. {worst.test_id} ~ {worst.train_id}, {worst.score:.0f}/100)"
            )
        if not split.test:
            warnings.append("test split is empty (too few items for the test fraction)")
    description = {
        "workbench_golden_set": source.name,
        "version": source.version,
        "manifest": source.manifest(),
        "split": None
        if split is None
        else {"test_fraction": test_fraction, "salt": salt, "train": len(split.train), "test": len(split.test)},
    }
    info = DatasetInfo(description=orjson.dumps(description).decode(), features=features)

    def dataset(items: list[GoldenItem]) -> Any:
        rows = [_row(item) for item in items]
        columns = {name: [row[name] for row in rows] for name in features}
        return Dataset.from_dict(columns, features=features, info=info.copy())

    def fill(tmp: Path) -> None:
        with _quiet():
            if split is None:
                dataset(source.items).save_to_disk(str(tmp), num_shards=1 if not source.items else None)
            else:
                parts = DatasetDict(train=dataset(split.train), test=dataset(split.test))
                # datasets writes zero shards for an empty split and then cannot load it back.
                shards = {name: 1 for name, part in parts.items() if len(part) == 0}
                parts.save_to_disk(str(tmp), num_shards=shards or None)

    atomic_dir(path, fill, replaceable=_is_hf_dir)
    stats: dict[str, Any] = {} if split is None else {"train": len(split.train), "test": len(split.test)}
    if push_to_hub is not None:
        from workbench.golden.exporters.hub import push_dataset_dir

        stats["hub"] = push_dataset_dir(path, push_to_hub)
    written = list(source.items) if split is None else [*split.train, *split.test]
    return make_result(
        "hf", source, path, written=written, skipped=[], sha256=sha256_tree(path), warnings=warnings, stats=stats
    )
