"""Per-group calibration (prompt version, model version, variant), honest about small groups.

A group with fewer than ``MIN_PAIRS`` (3) labelled pairs gets no statistics at all; one with fewer
than ``MIN_GROUP_N`` (30) gets them with a warning: below ~30 pairs percentile-bootstrap and
normal-approximation (PPI) intervals under-cover noticeably and kappa on a 5-point scale rests on a
handful of items per category, so such numbers are indicative only. A group whose data are
degenerate (e.g. constant ratings) is reported with the reason instead of failing the whole run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import StatisticsError
from workbench.judge.calibration.base import MIN_PAIRS

__all__ = ["MIN_GROUP_N", "GroupResult", "by_group", "group_label"]

MIN_GROUP_N = 30


def group_label(key: Any) -> str:
    """Stable text for a group key: ``prompt_version=3, model_version=gpt-4o`` for a mapping."""
    if isinstance(key, Mapping):
        return ", ".join(f"{name}={value}" for name, value in key.items())
    if isinstance(key, tuple | list):
        return ", ".join(str(part) for part in key)
    return "(none)" if key is None else str(key)


def _json_key(key: Any) -> Any:
    if isinstance(key, Mapping):
        return {str(name): _json_key(value) for name, value in key.items()}
    if isinstance(key, tuple | list):
        return [_json_key(part) for part in key]
    if isinstance(key, np.generic):
        return key.item()
    return key if key is None or isinstance(key, str | int | float | bool) else str(key)


@dataclass(frozen=True)
class GroupResult:
    label: str
    key: Any
    n: int
    n_unlabeled: int
    report: Any | None
    warning: str | None

    def to_dict(self) -> dict[str, Any]:
        body = self.report.to_dict() if self.report is not None else {}
        return {
            **body,
            "group": self.label,
            "key": self.key,
            "n": self.n,
            "n_unlabeled": self.n_unlabeled,
            "warning": self.warning,
        }


def _index(keys: Sequence[Any]) -> dict[str, tuple[Any, list[int]]]:
    found: dict[str, tuple[Any, list[int]]] = {}
    for position, key in enumerate(keys):
        found.setdefault(group_label(key), (_json_key(key), []))[1].append(position)
    return found


def by_group(
    groups: Sequence[Any],
    n: int,
    compute: Callable[[np.ndarray, np.ndarray | None], Any],
    *,
    unlabeled_groups: Sequence[Any] | None = None,
    n_unlabeled: int = 0,
    min_n: int = MIN_GROUP_N,
) -> tuple[GroupResult, ...]:
    """Run ``compute(labelled_indices, unlabelled_indices_or_None)`` for each group, sorted by label."""
    if isinstance(groups, str) or len(groups) != n:
        raise StatisticsError(f"groups: need one group key per labelled pair ({len(groups)} keys for {n} pairs)")
    if unlabeled_groups is not None and (isinstance(unlabeled_groups, str) or len(unlabeled_groups) != n_unlabeled):
        raise StatisticsError(
            f"unlabeled groups: need one key per unlabelled score "
            f"({len(unlabeled_groups)} keys for {n_unlabeled} scores)"
        )
    labelled = _index(groups)
    unlabelled = _index(unlabeled_groups) if unlabeled_groups is not None else {}
    results = []
    for label in sorted(set(labelled) | set(unlabelled)):
        key = (labelled.get(label) or unlabelled[label])[0]
        idx = np.asarray(labelled[label][1] if label in labelled else [], dtype=int)
        u_idx = np.asarray(unlabelled[label][1], dtype=int) if label in unlabelled else None
        if unlabeled_groups is not None and u_idx is None:
            u_idx = np.empty(0, dtype=int)
        n_u = 0 if u_idx is None else u_idx.size
        report, warning = None, None
        if idx.size < MIN_PAIRS:
            warning = f"n={idx.size} labelled pairs: too few to say anything (need at least {MIN_PAIRS})"
        else:
            try:
                report = compute(idx, u_idx if n_u >= 2 else None)
            except StatisticsError as exc:
                warning = f"no statistics: {exc}"
            else:
                if idx.size < min_n:
                    warning = (
                        f"n={idx.size} < {min_n} labelled pairs: intervals are wide and may under-cover; "
                        "treat as indicative only"
                    )
                if u_idx is not None and n_u < 2:
                    note = f"{n_u} unlabelled scores: PPI not computed"
                    warning = f"{warning}; {note}" if warning else note
        results.append(GroupResult(label, key, int(idx.size), n_u, report, warning))
    return tuple(results)
