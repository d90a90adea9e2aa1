"""Triage search (issue 13 item 9): what a term matches, on both backends and through every plan.

The store answers a search from a text index (FTS5 on SQLite, pg_trgm on PostgreSQL) and picks one of
two plans per term (sort the index matches, or walk the queue in windows). Each test compares the
store's answer with a reference written here from the documented semantics, over whole result lists
in queue order, with each plan forced in turn by the store's own tuning constants.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Text, delete, func, or_, select, text, type_coerce

from workbench.models import Candidate
from workbench.store import Store, open_store
from workbench.store import candidates as store_candidates
from workbench.store.candidate_inputs import remove_stale_candidates
from workbench.store.candidates import (
    QueueFilter,
    count_queue,
    queue_page,
    record_decision,
    search_term,
    upsert_candidates,
)
from workbench.store.schema import candidate_search, candidates, migrations_table

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
WORDS = [
    "refund",
    "password",
    "invoice",
    "shipping",
    "discount",
    "account",
    "export",
    "upload",
    "crash",
    "Zürich",
    "naïve",
    "ÉCOLE",
    "straße",
    "déjà",
    "café",
    "c++",
    "e-mail",
    "10:30",
    "50%",
    "snake_case",
]
SPECIAL = [
    '"',
    '""',
    "'",
    "*",
    "-",
    ":",
    "^",
    "(",
    ")",
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "NEAR(a b)",
    "a OR b",
    '"refund',
    'ref"und',
    "refund*",
    "-refund",
    "col:refund",
    "{a b}",
    "\\",
    "%",
    "_",
    "%_%",
    "a\\b",
    "c++",
    "e-mail",
    "10:30",
    "50%",
    "snake_case",
    "Zürich",
    "zürich",
    "ÉCOLE",
    "école",
    "straße",
    "déjà",
    "日本",
    "日本語",
    "🙂",
    "x" * 300,
]

PLANS = {
    "default": {},
    "index": {"DENSE_MATCHES": 10**9, "WINDOWS": (1,)},  # every term: sort the index matches
    "walk": {"DENSE_MATCHES": 1, "WINDOWS": (3, 7, 50)},  # every term: walk the queue, index for the rest
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Store]:
    url = tmp_path / "wb.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    st = open_store(url)
    yield st
    st.close()


@pytest.fixture(params=list(PLANS))
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in PLANS[request.param].items():
        monkeypatch.setattr(store_candidates, name, value)
    return str(request.param)


def cand(n: int, **kw: Any) -> Candidate:
    base: dict[str, Any] = dict(
        id=f"{n:026x}",
        cluster_key=f"k{n}",
        representative_trace_id=f"t{n}",
        member_trace_ids=[f"t{n}"],
        input=[{"role": "user", "content": f"question {n}"}],
        output_text=f"answer {n}",
        priority=float(n % 7),
        primary_signal="thumbs",
        prompt_name="support",
        prompt_version=1,
        model_resolved="m1",
        created_at=T0,
        updated_at=T0,
    )
    base.update(kw)
    return Candidate(**base)


def corpus(n: int = 160, seed: int = 7) -> list[Candidate]:
    """Candidates with common, rare and non-ASCII words, in every field the search reads."""
    rng = random.Random(seed)
    items = []
    for i in range(n):

        def phrase(k: int) -> str:
            return " ".join(rng.choice(WORDS) if rng.random() < 0.5 else f"w{rng.randint(0, 40)}" for _ in range(k))

        content: Any = f"Customer: {phrase(4)} (case {i})"
        if i % 9 == 0:  # multi-part content, as the SDK sends it
            content = [{"type": "text", "text": phrase(3)}, {"type": "image_url", "image_url": {"url": "x"}}]
        items.append(
            cand(
                i,
                input=[{"role": "system", "content": "Answer politely."}, {"role": "user", "content": content}],
                output_text=phrase(5) if i % 11 else None,
                expected_output=phrase(2) if i % 5 == 0 else None,
                notes=phrase(2) if i % 7 == 0 else None,
                labels=[rng.choice(["billing", "qa", "tone", "needs-fix"])] if i % 4 == 0 else [],
                priority=round(rng.random(), 2),  # ties, so the id breaks them
                status=rng.choice(["open", "open", "open", "accepted", "rejected"]),
                primary_signal=rng.choice(["thumbs", "repeat_ask"]),
            )
        )
    items.append(cand(n, input=[{"role": "user", "content": "the one with a kangaroo"}], priority=0.5))
    return items


# ---------------------------------------------------------------- the reference


def document(c: Candidate) -> str:
    """The search document as documented: message contents, output, expected output, notes, labels."""
    parts = []
    for message in c.input:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
            if texts:
                parts.append(" ".join(texts))
    return "\n".join(
        ["\n".join(parts), c.output_text or "", c.expected_output or "", c.notes or "", "\n".join(c.labels)]
    )


def fold(value: str, dialect: str) -> str:
    # SQLite's LIKE folds ASCII letters only; PostgreSQL's ILIKE folds every letter
    return value.lower() if dialect == "postgresql" else re.sub("[A-Z]", lambda m: m.group(0).lower(), value)


def matches(c: Candidate, term: str, dialect: str) -> bool:
    term = term.strip()
    if c.id == term:
        return True
    doc, needle = fold(document(c), dialect), fold(term, dialect)
    if len(term) >= 3:
        return needle in doc
    return (" " + doc.replace("\n", " ")).find(" " + needle) >= 0


def expected(items: list[Candidate], term: str, dialect: str, status: str | None = "open") -> list[str]:
    hits = [c for c in items if (status is None or c.status == status) and matches(c, term, dialect)]
    return [c.id for c in sorted(hits, key=lambda c: (-c.priority, c.id))]


def everything(store: Store, flt: QueueFilter, page: int = 7) -> list[str]:
    """All pages of a search, forwards by cursor; then the same read backwards must agree."""
    with store.read() as conn:
        rows = queue_page(conn, flt, limit=page)
        out = [r.id for r in rows]
        while len(rows) == page:
            rows = queue_page(conn, flt, after=rows[-1].cursor, limit=page)
            out += [r.id for r in rows]
        if out:
            last = next(r for r in queue_page(conn, flt, limit=len(out)) if r.id == out[-1])
            back, rows = [last.id], queue_page(conn, flt, before=last.cursor, limit=page)
            while rows:
                back = [r.id for r in rows] + back
                rows = queue_page(conn, flt, before=rows[0].cursor, limit=page)
            assert back == out, "reading backwards gave other rows"
    return out


@pytest.fixture
def loaded(store: Store) -> tuple[Store, list[Candidate]]:
    items = corpus()
    with store.write() as conn:
        upsert_candidates(conn, items)
    return store, items


# ---------------------------------------------------------------- what matches


TERMS = [
    "refund",
    "account",
    "w1",
    "case 15",
    "case 150",
    "kangaroo",
    "zebra",
    "qa",
    "needs-fix",
    "Answer politely",
    "politely",
    "image_url",
    "role",
    "content",
]


def test_rare_common_and_absent_terms_match_the_reference(loaded, plan):
    store, items = loaded
    dialect = store.dialect
    for term in TERMS:
        want = expected(items, term, dialect)
        assert everything(store, QueueFilter(text=term)) == want, term
        assert everything(store, QueueFilter(status=None, text=term)) == expected(items, term, dialect, None), term
        with store.read() as conn:
            assert count_queue(conn, QueueFilter(text=term)) == len(want), term
            assert count_queue(conn, QueueFilter(text=term), cap=3) == min(3, len(want)), term
        if term in ("refund", "account"):
            assert len(want) > 10, f"{term} is a common term"
        if term in ("kangaroo", "zebra", "role", "content", "image_url"):  # JSON keys are not text anyone reads
            assert len(want) <= 1, term


def test_prefixes_while_typing_match_the_reference_at_every_keystroke(loaded, plan):
    store, items = loaded
    typed, before = "", None
    for key in "Shipping w3":
        typed += key
        want = expected(items, typed, store.dialect)
        assert everything(store, QueueFilter(text=typed)) == want, typed
        if before is not None and len(typed.strip()) > 3:  # substrings: every further keystroke narrows
            assert set(want) <= set(before), typed
        before = want


def test_special_characters_never_raise_and_match_the_reference(loaded, plan):
    store, items = loaded
    with store.write() as conn:  # a candidate that holds each term itself
        held = [
            cand(900 + k, input=[{"role": "user", "content": f"odd: {term} end"}], priority=0.3)
            for k, term in enumerate(SPECIAL)
        ]
        upsert_candidates(conn, held)
    items = [*items, *held]
    with store.read() as conn:
        unfiltered = [r.id for r in queue_page(conn, QueueFilter(status=None), limit=1000)]
    for k, term in enumerate(SPECIAL):
        got = everything(store, QueueFilter(status=None, text=term))
        if search_term(term) is None:  # 1-2 characters, no letter or digit: not searched yet
            assert got == unfiltered, term
            continue
        assert got == expected(items, term, store.dialect, None), term
        if len(term.strip()) >= 3:
            assert f"{900 + k:026x}" in got, term


def test_case_folding_is_documented_per_backend(loaded):
    store, _ = loaded
    with store.write() as conn:
        upsert_candidates(conn, [cand(901, output_text="Grüße aus ZÜRICH, école"), cand(902, output_text="REFUNDS")])
    ids = {q: set(everything(store, QueueFilter(text=q))) for q in ("zürich", "ZÜRICH", "refunds", "ÉCOLE")}
    assert f"{902:026x}" in ids["refunds"]  # ASCII letters fold everywhere
    assert f"{901:026x}" in ids["ZÜRICH"]
    with store.read() as conn:  # PostgreSQL folds what its locale folds (C.UTF-8, en_US.UTF-8: all letters)
        folds_all = store.dialect == "postgresql" and conn.execute(select(func.lower("Ü"))).scalar() == "ü"
    assert (f"{901:026x}" in ids["zürich"]) is folds_all
    assert (f"{901:026x}" in ids["ÉCOLE"]) is folds_all


def test_short_terms_match_word_starts_and_punctuation_waits(loaded):
    store, _ = loaded
    assert search_term("  #  ") is None and search_term("--") is None and search_term("") is None
    assert search_term("#1") == "#1" and search_term(" é ") == "é" and search_term("abc") == "abc"
    with store.write() as conn:
        upsert_candidates(conn, [cand(903, output_text="prefix xq-thing"), cand(904, output_text="midxqword")])
    got = everything(store, QueueFilter(status=None, text="xq"))
    assert f"{903:026x}" in got and f"{904:026x}" not in got  # a word start, not any substring
    assert f"{904:026x}" in everything(store, QueueFilter(status=None, text="xqw"))  # 3+: anywhere


def test_equal_to_the_old_like_search_on_plain_text(store, plan):
    """Where the old LIKE over the raw columns was right (plain words, no JSON escapes), nothing changes."""
    rng = random.Random(3)
    items = [
        cand(
            i,
            input=[{"role": "user", "content": " ".join(rng.choice(WORDS[:9]) for _ in range(4))}],
            output_text=" ".join(rng.choice(WORDS[:9]) for _ in range(3)),
            notes=rng.choice([None, "call back", "Refund approved"]),
            labels=rng.choice([[], ["billing"]]),
            priority=rng.random(),
        )
        for i in range(120)
    ]
    with store.write() as conn:
        upsert_candidates(conn, items)
    c = candidates.c
    for term in [
        "refund",
        "REFUND",
        "invoice",
        "ship",
        "count",
        "call back",
        "billing",
        "export upload",
        "nothing-like-this",
    ]:
        pattern = f"%{term}%"
        columns = [type_coerce(col, Text) for col in (c.input, c.output_text, c.notes, c.labels, c.expected_output)]
        likes = [col.ilike(pattern) if store.dialect == "postgresql" else col.like(pattern) for col in columns]
        old = select(c.id).where(c.status == "open", or_(c.id == term, *likes)).order_by(c.priority.desc(), c.id)
        with store.read() as conn:
            before = [r.id for r in conn.execute(old)]
        assert everything(store, QueueFilter(text=term)) == before, term


# ---------------------------------------------------------------- filters, ids, counts


def test_other_filters_and_ids_combine_with_the_text(loaded, plan):
    store, items = loaded
    target = items[37]
    flt = QueueFilter(status=None, signal="repeat_ask", text="refund")
    want = [
        i
        for i in expected(items, "refund", store.dialect, None)
        if next(c for c in items if c.id == i).primary_signal == "repeat_ask"
    ]
    assert everything(store, flt) == want
    assert everything(store, QueueFilter(status=None, text=target.id)) == [target.id]
    assert everything(store, QueueFilter(status=None, signal="nope", text=target.id)) == []
    with store.read() as conn:
        assert count_queue(conn, QueueFilter(status=None, text=target.id)) == 1
        assert count_queue(conn, flt) == len(want)


# ---------------------------------------------------------------- the index follows every write


def test_index_follows_refresh_decisions_and_deletes(loaded, plan):
    store, items = loaded
    first = items[3]
    with store.write() as conn:
        upsert_candidates(conn, [first.model_copy(update={"output_text": "now about a platypus"})])
        record_decision(conn, items[4].id, "note", "ana", None, {"notes": "platypus escalation", "status": "open"})
        record_decision(conn, items[5].id, "label", "ana", None, {"labels": ["platypus-team"], "status": "open"})
    got = everything(store, QueueFilter(status=None, text="platypus"))
    assert set(got) == {first.id, items[4].id, items[5].id}
    with store.write() as conn:
        record_decision(conn, items[4].id, "accept", "ana", None, {"status": "accepted"})
    assert items[4].id not in everything(store, QueueFilter(status="open", text="platypus"))
    assert items[4].id in everything(store, QueueFilter(status="accepted", text="platypus"))
    with store.write() as conn:  # the builder drops untouched candidates; a plain delete too
        remove_stale_candidates(conn, keep={c.cluster_key for c in items if c.id != first.id})
        conn.execute(delete(candidates).where(candidates.c.id == items[5].id))
    assert everything(store, QueueFilter(status=None, text="platypus")) == [items[4].id]
    with store.read() as conn:
        docs = {r.candidate_id for r in conn.execute(select(candidate_search.c.candidate_id))}
        assert docs == {r.id for r in conn.execute(select(candidates.c.id))}
        assert not any("now about a platypus" in r.doc for r in conn.execute(select(candidate_search.c.doc)))


def test_unexpected_json_in_a_row_does_not_break_writes(store):
    """Rows written around the store's types (other JSON shapes, even bad JSON) still insert and update;
    the parts that are not text are left out of the document."""
    insert = text(
        "INSERT INTO candidates (id, cluster_key, representative_trace_id, member_trace_ids, feedback_ids, "
        "count, input, output_text, signals, users, priority, status, labels, created_at, updated_at) VALUES "
        "(:id, :id, 't', '[]', '[]', 1, :input, :output, '{}', 1, 0.5, 'open', :labels, :t, :t)"
    )
    with store.write() as conn:
        conn.execute(
            insert,
            {
                "id": "odd-shapes",
                "t": T0,
                "input": '["plain", 3, null, {"content": 7}]',
                "labels": '{"not": "a list"}',
                "output": "wombat answer",
            },
        )
        conn.execute(
            insert, {"id": "bad-json", "t": T0, "input": "not json {", "labels": "[oops", "output": "quokka answer"}
        )
        conn.execute(text("UPDATE candidates SET notes = 'numbat' WHERE id = 'bad-json'"))
    with store.read() as conn:
        docs = dict(conn.execute(select(candidate_search.c.candidate_id, candidate_search.c.doc)).all())
    assert docs == {"odd-shapes": "\nwombat answer\n\n\n", "bad-json": "\nquokka answer\n\nnumbat\n"}
    assert everything(store, QueueFilter(text="wombat")) == ["odd-shapes"]


def test_migration_backfills_an_existing_store(store):
    """A store migrated before 0005 gets every candidate indexed when it is opened by this version."""
    items = corpus(40)
    with store.write() as conn:
        upsert_candidates(conn, items)
        # take the store back to before 0005: what an older workbench left on disk
        if store.dialect == "postgresql":
            conn.execute(text("DROP TRIGGER candidates_search_sync ON candidates"))
        else:
            for name in ("insert", "update", "delete"):
                conn.execute(text(f"DROP TRIGGER candidates_search_{name}"))
            for name in ("candidate_search_trigram", "candidate_search_words"):
                conn.execute(text(f"DROP TABLE {name}"))
        conn.execute(text("DROP TABLE candidate_search"))
        conn.execute(delete(migrations_table).where(migrations_table.c.name == "0005_candidate_search"))
    url = store.location.url
    store.close()
    reopened = open_store(url)
    try:
        for term in ("refund", "w1", "case 15", "kangaroo", "qa"):
            assert everything(reopened, QueueFilter(text=term)) == expected(items, term, reopened.dialect), term
    finally:
        reopened.close()
