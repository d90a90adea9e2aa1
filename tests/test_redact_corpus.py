"""Redaction quality on the probe corpus (tests/data/pii/) and no probe reaching a golden set or an export.

Figures are printed (``pytest -s``) and asserted against the issue's targets: recall >= 0.98 on the
probes, false positives <= 1% of the 1,000 ordinary sentences. The end-to-end test runs every probe
through the real pipeline (traces -> candidates refresh -> accept -> ``workbench golden build`` ->
``workbench export`` in every file format) and scans every file written.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from workbench.candidates.redact import redact_text
from workbench.candidates.service import refresh_candidates
from workbench.ids import new_id
from workbench.models import Feedback
from workbench.store import feedback as feedback_rows
from workbench.store import open_store
from workbench.store import traces as trace_rows
from workbench.store.candidates import record_decision
from workbench.store.schema import candidates

from .conftest import run_cli
from .pii_corpus import Probe, false_positives, load_probes, load_sentences, score_probes

RECALL_TARGET = 0.98
FP_TARGET = 0.01


def test_probe_corpus_is_large_and_covers_every_kind() -> None:
    probes = load_probes()
    kinds = Counter(p.kind for p in probes)
    assert len(probes) >= 100 and len({p.id for p in probes}) == len(probes)
    assert set(kinds) == {"phone", "card", "email", "api_key", "ip"} and min(kinds.values()) >= 15
    assert all(p.pii in p.text for p in probes)
    assert len(load_sentences()) == 1000


@pytest.mark.parametrize("split", ["dev", "heldout", "all"])
def test_recall_on_the_probe_corpus(split: str) -> None:
    probes = [p for p in load_probes() if split in ("all", p.split)]
    score = score_probes(redact_text, probes)
    by_kind = Counter(p.kind for p in probes)
    missed_kind = Counter(p.kind for p, _ in score.misses)
    per_kind = ", ".join(f"{k} {by_kind[k] - missed_kind[k]}/{by_kind[k]}" for k in sorted(by_kind))
    print(f"\nPII recall ({split}): {score.caught}/{score.total} = {score.recall:.3f} ({per_kind})")
    for probe, redacted in score.misses:
        print(f"  missed {probe.id} ({probe.spec}): {redacted!r}")
    assert score.recall >= RECALL_TARGET, [p.id for p, _ in score.misses]


def test_false_positives_on_ordinary_sentences() -> None:
    sentences = load_sentences()
    flagged = false_positives(redact_text, sentences)
    rate = len(flagged) / len(sentences)
    print(f"\nfalse positives: {len(flagged)}/{len(sentences)} = {rate:.3%}")
    for original, redacted in flagged:
        print(f"  {original!r} -> {redacted!r}")
    assert rate <= FP_TARGET


# ------------------------------------------------------------------------------ end to end

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FORMATS = {
    "csv": "out.csv",
    "openai-chat": "chat.jsonl",
    "openai-preference": "pref.jsonl",
    "trl-dpo": "dpo.jsonl",
    "hf": "hf",
}


def _forms(text: str) -> set[str]:
    """How a string can appear in a file: as is, JSON-escaped (ASCII or not), CSV-quoted."""
    return {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1], text.replace('"', '""')}


_SEPARATED = r"[ .()/+\-\u00a0\u202f\u2009\u2011\u2013]{0,3}"


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _leaks(probes: list[Probe], names: list[str], content: str) -> list[str]:
    contexts = " ".join(p.text.replace(p.pii, " ") for p in probes)
    found = []
    for probe in probes:
        if any(form in content for form in _forms(probe.pii)):
            found.append(f"{probe.id}: verbatim")
            continue
        for run in re.findall(r"[^\W_]{6,}", probe.pii):  # word-like runs ("example") occur legitimately
            distinctive = len(run) >= 12 or (any(c.isdigit() for c in run) and any(c.isalpha() for c in run))
            if distinctive and run not in contexts and run in content:
                found.append(f"{probe.id}: {run}")
        if probe.kind in ("phone", "card") and re.search(_SEPARATED.join(_digits(probe.pii)), content):
            found.append(f"{probe.id}: digits")  # the same digits with any separators
    found += [f"name {name}" for name in names if name in content]
    return found


def test_no_probe_reaches_a_golden_set_or_an_export(tmp_path: Path, sqlite_url: str) -> None:
    probes = load_probes()
    sentences = load_sentences()
    names = [f"participant-{i:03d}-{chr(0x41 + i % 26)}ngstr\u00f6m" for i in range(len(probes))]
    store = open_store(sqlite_url)
    rows: list[dict[str, Any]] = []
    feedback: list[Feedback] = []
    for i, probe in enumerate(probes):
        at = T0 + timedelta(minutes=i)
        # A distinct ordinary sentence in front keeps every probe its own candidate (no clustering away).
        question = f"{sentences[i * 5]} {probe.text}"
        trace_id = new_id()
        rows.append(
            dict(
                id=trace_id,
                created_at=at,
                operation="chat",
                user_id=f"u{i}",
                prompt_name="support",
                prompt_version=1,
                input=[{"role": "user", "name": names[i], "content": question}],
                output_text=f"Noted, I will use {probe.text}",
                stream=False,
                status="ok",
                params={},
                tags=[],
                metadata={},
            )
        )
        feedback.append(
            Feedback(
                id=new_id(),
                trace_id=trace_id,
                kind="explicit",
                signal="thumbs",
                value=0.0,
                source="user",
                user_id=f"u{i}",
                created_at=at,
            )
        )
        feedback.append(
            Feedback(
                id=new_id(),
                trace_id=trace_id,
                kind="explicit",
                signal="correction",
                text=f"The right answer mentions {probe.text}",
                source="user",
                user_id=f"u{i}",
                created_at=at + timedelta(seconds=5),
            )
        )
    with store.write() as conn:
        trace_rows.insert_traces(conn, rows)
        feedback_rows.add_feedback_many(conn, feedback)
    refresh_candidates(store, now=T0 + timedelta(days=1))
    with store.write() as conn:
        ids = [row.id for row in conn.execute(select(candidates.c.id))]
        for candidate_id in ids:
            record_decision(conn, candidate_id, "accept", "reviewer", None, {"status": "accepted"})
    store.close()
    assert len(ids) == len(probes)  # every probe is its own candidate, so every probe is tested

    def cli(*args: str) -> str:
        result = run_cli("--store", sqlite_url, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout

    built = json.loads(cli("golden", "build", "probes", "--json"))
    assert built["item_count"] == len(probes), built
    (tmp_path / "exports").mkdir()
    for fmt, out in FORMATS.items():
        cli("export", "probes", "--format", fmt, "--out", str(tmp_path / "exports" / out))
    files = [p for p in (tmp_path / "golden_sets").rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "exports").rglob("*") if p.is_file()]
    assert len(files) >= 2 + len(FORMATS)
    leaks = {}
    for path in files:
        content = path.read_bytes().decode("utf-8", errors="replace")
        if found := _leaks(probes, names, content):
            leaks[str(path.relative_to(tmp_path))] = found
    scanned = sum(p.stat().st_size for p in files)
    print(
        f"\nend to end: {len(probes)} probes, {len(files)} files ({scanned} bytes) scanned, "
        f"{sum(len(v) for v in leaks.values())} leaks"
    )
    assert not leaks, leaks
