"""Deterministic train/test split by item hash, and a check for near-duplicate inputs across it.

An item's side depends only on its id (a hash of its input) and an optional salt, never on
which other items exist, so a growing golden set never moves an item from test to train and
back. Exact duplicates cannot straddle the split (same input, same id), but paraphrases can:
``leakage_check`` compares the non-system input text of every test item with every train item
using rapidfuzz and flags pairs at or above a similarity threshold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process, utils

from workbench.errors import ValidationError
from workbench.golden.items import GoldenItem

__all__ = ["Leak", "Split", "leakage_check", "resolve_leaks", "split_bucket", "split_items"]

_CHUNK = 512  # test rows compared per cdist call: bounds memory at 512 x len(train) floats


@dataclass(frozen=True)
class Split:
    train: list[GoldenItem]
    test: list[GoldenItem]


@dataclass(frozen=True)
class Leak:
    """A test item whose input is nearly the same as a train item's (score 0..100)."""

    test_id: str
    train_id: str
    score: float


def split_bucket(item_id: str, salt: str = "") -> float:
    """A uniform number in [0, 1) fixed by the id (and salt): the item's place on the split line."""
    digest = hashlib.sha256(f"{salt}\0{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_items(items: Iterable[GoldenItem], *, test_fraction: float = 0.2, salt: str = "") -> Split:
    """Items whose bucket falls below ``test_fraction`` go to test; both sides keep id order."""
    if not 0.0 < test_fraction < 1.0:
        raise ValidationError(f"test_fraction {test_fraction!r}: must be strictly between 0 and 1")
    train: list[GoldenItem] = []
    test: list[GoldenItem] = []
    for item in sorted(items, key=lambda i: i.id):
        (test if split_bucket(item.id, salt) < test_fraction else train).append(item)
    return Split(train=train, test=test)


def _normalized(text: str) -> str:
    """Lower-cased, punctuation-free, tokens sorted: ``ratio`` on this is ``token_sort_ratio``.

    Sorting once per text instead of once per pair makes the all-pairs check ~7x faster.
    """
    return " ".join(sorted(utils.default_process(text).split()))


def leakage_check(
    split: Split,
    *,
    threshold: float = 90.0,
    text: Callable[[GoldenItem], str] = lambda item: item.prompt_text,
    workers: int = -1,
) -> list[Leak]:
    """Every (test, train) pair whose input similarity is at least ``threshold`` (0..100).

    Similarity is rapidfuzz's ``token_sort_ratio`` on lower-cased, punctuation-free text, so
    case, punctuation and word order do not hide a near-duplicate. Sorted by score (highest
    first), then ids. ``workers=-1`` uses every core.
    """
    if not 0.0 < threshold <= 100.0:
        raise ValidationError(f"threshold {threshold!r}: must be in (0, 100]")
    if not split.train or not split.test:
        return []
    train_texts = [_normalized(text(item)) for item in split.train]
    leaks: list[Leak] = []
    for start in range(0, len(split.test), _CHUNK):
        chunk = split.test[start : start + _CHUNK]
        scores = process.cdist(
            [_normalized(text(item)) for item in chunk],
            train_texts,
            scorer=fuzz.ratio,
            score_cutoff=threshold,
            workers=workers,
        )
        for row, col in zip(*np.nonzero(scores >= threshold), strict=True):
            leaks.append(Leak(chunk[row].id, split.train[col].id, float(scores[row, col])))
    leaks.sort(key=lambda leak: (-leak.score, leak.test_id, leak.train_id))
    return leaks


def resolve_leaks(split: Split, *, threshold: float = 90.0, max_rounds: int | None = None) -> Split:
    """Move leaking test items into train until no test item is near a train item.

    Repeats because a moved item can make another test item leak. Deterministic, and it only
    ever shrinks test, so it ends within ``len(test)`` rounds.
    """
    current = split
    for _ in range(max_rounds if max_rounds is not None else len(split.test) + 1):
        leaks = leakage_check(current, threshold=threshold)
        if not leaks:
            return current
        moving = {leak.test_id for leak in leaks}
        current = Split(
            train=sorted([*current.train, *(i for i in current.test if i.id in moving)], key=lambda i: i.id),
            test=[i for i in current.test if i.id not in moving],
        )
    return current
