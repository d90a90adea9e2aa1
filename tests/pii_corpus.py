"""The PII probe corpus and the ordinary-sentence set (tests/data/pii/), and how a redaction is scored.

A probe counts as caught when nothing of its PII item is left: the item itself is gone and so is every
run of three or more letters or digits from it that the rest of the sentence does not also contain
(``::ffff:198.51.100.7`` -> ``[IP].51.100.7`` leaks ``100``); placeholders are not
text of the item. A sentence counts as a false positive when
the redactor changes it at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PII_DIR = Path(__file__).parent / "data" / "pii"
_RUN = re.compile(r"[^\W_]{3,}")
_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")


@dataclass(frozen=True)
class Probe:
    id: str
    kind: str
    text: str
    pii: str
    spec: str
    split: str


def load_probes() -> list[Probe]:
    lines = (PII_DIR / "probes.jsonl").read_text(encoding="utf-8").splitlines()
    return [Probe(**json.loads(line)) for line in lines if line.strip()]


def load_sentences() -> list[str]:
    return [s for s in (PII_DIR / "ordinary_sentences.txt").read_text(encoding="utf-8").splitlines() if s]


def leaked(probe: Probe, redacted: str) -> list[str]:
    """What of the probe's PII survives in ``redacted`` (empty: caught)."""
    if probe.pii in redacted:
        return [probe.pii]
    context = probe.text.replace(probe.pii, " ")
    remaining = _PLACEHOLDER.sub(" ", redacted)
    return [run for run in _RUN.findall(probe.pii) if run in remaining and run not in context]


@dataclass
class Score:
    caught: int = 0
    total: int = 0
    misses: list[tuple[Probe, str]] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.caught / self.total if self.total else 1.0


def score_probes(redact: Callable[[str], str], probes: list[Probe]) -> Score:
    score = Score()
    for probe in probes:
        redacted = redact(probe.text)
        score.total += 1
        if leaked(probe, redacted):
            score.misses.append((probe, redacted))
        else:
            score.caught += 1
    return score


def false_positives(redact: Callable[[str], str], sentences: list[str]) -> list[tuple[str, str]]:
    return [(s, r) for s in sentences if (r := redact(s)) != s]
