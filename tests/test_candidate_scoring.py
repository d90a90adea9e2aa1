"""Candidate scoring and building: worked ranking examples, feedback semantics, redaction, bad input."""

from __future__ import annotations

import copy
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from workbench.candidates import (
    CandidateConfig,
    Evidence,
    build_candidates,
    effective_feedback,
    explain_candidates,
    interpret_feedback,
    score_evidence,
)
from workbench.errors import ValidationError
from workbench.models import Feedback, Trace

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_counter = iter(range(10**6))


def trace(
    question: str,
    *,
    user: str | None = "u1",
    answer: str = "An answer.",
    at: datetime | None = None,
    prompt: str | None = "support",
    history: list[dict] | None = None,
    tid: str | None = None,
) -> Trace:
    n = next(_counter)
    return Trace(
        id=tid or f"T{n:06d}",
        created_at=at or NOW - timedelta(hours=1),
        user_id=user,
        session_id=f"s{n}",
        prompt_name=prompt,
        prompt_version=1,
        model_resolved="gpt-test",
        input=[
            {"role": "system", "content": "You are helpful."},
            *(history or []),
            {"role": "user", "content": question},
        ],
        output_text=answer,
    )


def fb(
    t: Trace,
    signal: str,
    *,
    value: float | None = None,
    text: str | None = None,
    strength: float = 1.0,
    user: str | None = None,
    at: datetime | None = None,
    evidence: dict | None = None,
    metadata: dict | None = None,
    kind: str | None = None,
    fid: str | None = None,
) -> Feedback:
    n = next(_counter)
    explicit = signal in ("thumbs", "rating", "correction", "comment")
    return Feedback(
        id=fid or f"F{n:06d}",
        trace_id=t.id,
        kind=kind or ("explicit" if explicit else "implicit"),
        signal=signal,
        value=value,
        text=text,
        strength=strength,
        source="test" if explicit else f"{signal}@1",
        user_id=user,
        evidence=evidence or {},
        metadata=metadata or {},
        created_at=at or NOW - timedelta(minutes=30),
    )


# --- worked ranking examples -------------------------------------------------------------------


def test_correction_from_three_users_outranks_a_single_weak_abandon() -> None:
    asked = [
        trace(q, user=u)
        for q, u in [
            ("How do I reset my password?", "a"),
            ("how can i reset my password", "b"),
            ("How do I reset my password", "c"),
        ]
    ]
    lonely = trace("What is the weather on Mars?", user="d")
    feedback = [fb(t, "correction", text="Use Settings > Security > Reset.") for t in asked]
    feedback.append(fb(lonely, "abandon", strength=0.3))

    builds = explain_candidates([*asked, lonely], feedback, now=NOW)
    assert [b.candidate.representative_trace_id for b in builds] == [asked[0].id, lonely.id]
    top, low = builds
    # worked values with the documented defaults (ages of 30 min barely decay: 7-day half-life)
    recency = 0.5 ** ((30 / 1440) / 7)
    assert top.score.signal == pytest.approx(1.0)
    assert top.score.users == 3 and top.candidate.count == 3
    assert top.candidate.priority == pytest.approx((1 + 0.5 * math.log2(3)) * (1 + 0.25 * math.log2(3)) * recency)
    assert top.candidate.priority == pytest.approx(2.4985, abs=1e-3)
    assert low.candidate.priority == pytest.approx(0.15 * 0.3 * recency)
    assert top.candidate.primary_signal == "correction" and low.candidate.primary_signal == "abandon"


def test_kind_weights_order_single_signals() -> None:
    kinds = [("correction", {"text": "fixed"}), ("thumbs", {"value": 0}), ("repeat_ask", {}), ("abandon", {})]
    traces = [
        trace(f"Distinct question number {w}", user=f"user{i}")
        for i, w in enumerate(["alpha", "bravo", "charlie", "delta"])
    ]
    feedback = [fb(t, signal, **kw) for t, (signal, kw) in zip(traces, kinds, strict=True)]
    ranked = [c.primary_signal for c in build_candidates(traces, feedback, now=NOW)]
    assert ranked == ["correction", "thumbs_down", "repeat_ask", "abandon"]


def test_recency_decays_with_the_configured_half_life() -> None:
    item = Evidence("thumbs_down", 1.0, "u", NOW - timedelta(days=4), "f1", "t1")
    config = CandidateConfig(half_life_days=2)
    fresh = score_evidence([item], count=1, now=NOW - timedelta(days=4), config=config)
    old = score_evidence([item], count=1, now=NOW, config=config)
    assert fresh.recency == 1.0 and fresh.priority == pytest.approx(0.9)
    assert old.age_days == pytest.approx(4.0)
    assert old.recency == pytest.approx(0.25)
    assert old.priority == pytest.approx(0.9 * 0.25)
    week = score_evidence([item], count=1, now=NOW)  # default half-life: 7 days
    assert week.recency == pytest.approx(0.5 ** (4 / 7))


def test_newer_signal_outranks_older_identical_signal() -> None:
    old, new = trace("Old broken question here"), trace("New broken question here")
    feedback = [fb(old, "thumbs", value=0, at=NOW - timedelta(days=20)), fb(new, "thumbs", value=0)]
    assert [c.representative_trace_id for c in build_candidates([old, new], feedback, now=NOW)] == [new.id, old.id]


def test_conflicting_signals_are_a_candidate_and_score_the_conflict() -> None:
    t = trace("Is Pluto a planet?")
    feedback = [fb(t, "thumbs", value=0, user="alice"), fb(t, "thumbs", value=1, user="bob")]
    (build,) = explain_candidates([t], feedback, now=NOW)
    s = build.score
    assert (s.negative, s.positive) == (pytest.approx(0.9), pytest.approx(0.8))
    assert s.conflict == pytest.approx(0.5 * 0.8)
    assert s.signal == pytest.approx(0.9 - 0.6 * 0.8 + 0.4)
    assert build.candidate.signals == {"thumbs_down": 1.0, "thumbs_up": 1.0}
    assert build.candidate.users == 1  # only alice complained


def test_positive_only_feedback_makes_no_candidate() -> None:
    t = trace("Thanks for the recipe")
    feedback = [fb(t, "thumbs", value=1), fb(t, "positive"), fb(t, "comment", text="not bad at all, thanks")]
    assert build_candidates([t], feedback, now=NOW) == []


def test_positive_signal_reduces_a_weak_negative_to_zero() -> None:
    t = trace("Plan a weekend in Rome")
    (build,) = explain_candidates([t], [fb(t, "abandon"), fb(t, "positive")], now=NOW)
    assert build.score.signal == 0.0  # 0.15 - 0.6 * 0.4 + 0.5 * 0.15 < 0, clipped
    assert build.candidate.priority == 0.0


def test_judge_disagreement_adds_to_priority() -> None:
    t = trace("Summarize this contract")
    feedback = [fb(t, "thumbs", value=0)]
    plain = explain_candidates([t], feedback, now=NOW)[0].score
    judged = explain_candidates([t], feedback, now=NOW, judge_scores={t.id: 1.0})[0].score
    assert plain.judge_disagreement is None and plain.judge_term == 0.0
    assert judged.judge_disagreement == pytest.approx(1.0)
    assert judged.priority - plain.priority == pytest.approx(0.5 * judged.recency)


def test_explanation_lists_every_term() -> None:
    t = trace("Translate hello to French")
    (build,) = explain_candidates([t], [fb(t, "repeat_ask", strength=0.8)], now=NOW)
    text = build.score.explain()
    for part in ("priority", "signal", "users", "size", "judge", "recency", "repeat_ask 0.40"):
        assert part in text
    assert build.score.as_dict()["contributions"] == {"repeat_ask": pytest.approx(0.4)}


# --- feedback semantics ----------------------------------------------------------------------------


def test_latest_vote_per_user_wins() -> None:
    flipped_up, flipped_down = trace("First question about taxes"), trace("Second question about visas")
    feedback = [
        fb(flipped_up, "thumbs", value=0, user="ann", at=NOW - timedelta(hours=2)),
        fb(flipped_up, "thumbs", value=1, user="ann", at=NOW - timedelta(hours=1)),
        fb(flipped_down, "thumbs", value=1, user="ann", at=NOW - timedelta(hours=2)),
        fb(flipped_down, "thumbs", value=0, user="ann", at=NOW - timedelta(hours=1)),
    ]
    random.Random(3).shuffle(feedback)
    (candidate,) = build_candidates([flipped_up, flipped_down], feedback, now=NOW)
    assert candidate.representative_trace_id == flipped_down.id
    assert candidate.signals == {"thumbs_down": 1.0}
    assert len(candidate.feedback_ids) == 1  # the superseded vote is not linked


def test_latest_vote_is_per_user_and_ties_break_on_id() -> None:
    t = trace("Third question about flights")
    at = NOW - timedelta(hours=1)
    rows = [
        fb(t, "thumbs", value=0, user="ann", at=at, fid="F-a"),
        fb(t, "thumbs", value=1, user="ann", at=at, fid="F-b"),  # same time, larger id: latest
        fb(t, "thumbs", value=0, user="bob", at=at - timedelta(hours=1)),
    ]
    kept = effective_feedback(rows, {t.id: t})
    assert [(r.user_id, r.value) for r in kept] == [("bob", 0), ("ann", 1)]


def test_ratings_use_the_scale_midpoint() -> None:
    t = trace("Rate me")
    low = interpret_feedback(fb(t, "rating", value=5, metadata={"scale": [1, 10]}), user="u")
    high = interpret_feedback(fb(t, "rating", value=6, metadata={"scale_min": 1, "scale_max": 10}), user="u")
    mid = interpret_feedback(fb(t, "rating", value=3), user="u")  # default scale 1-5
    bottom = interpret_feedback(fb(t, "rating", value=1), user="u")
    assert (low.label, low.strength) == ("rating_low", pytest.approx(0.5 + 0.5 * 0.5 / 4.5))
    assert (high.label, high.strength) == ("rating_high", pytest.approx(0.5 + 0.5 * 0.5 / 4.5))
    assert (mid.label, mid.strength) == ("rating_low", 0.5)
    assert (bottom.label, bottom.strength) == ("rating_low", 1.0)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("That's wrong, the capital is Canberra", "comment_negative"),
        ("this doesn't work on Windows", "comment_negative"),
        ("not what I asked for", "comment_negative"),
        ("not bad at all", "comment"),
        ("no errors, works great", "comment"),
        ("interesting, tell me more", "comment"),
    ],
)
def test_comments_are_neutral_unless_negative(text: str, label: str) -> None:
    assert interpret_feedback(fb(trace("q"), "comment", text=text), user="u").label == label


def test_implicit_strength_scales_the_label() -> None:
    item = interpret_feedback(fb(trace("q"), "regenerate", strength=0.4), user="u")
    assert (item.label, item.strength) == ("regenerate", pytest.approx(0.4))


# --- building -------------------------------------------------------------------------------------


def test_duplicates_cluster_into_one_candidate_with_links() -> None:
    a = trace("How do I export my data to CSV?", user="ann", at=NOW - timedelta(hours=3))
    b = trace("how can I export my data to csv", user="bob", at=NOW - timedelta(hours=2))
    other = trace("How do I delete my account?", user="cy")
    feedback = [
        fb(a, "thumbs", value=0),
        fb(b, "repeat_ask", strength=0.9),
        fb(b, "thumbs", value=1, user="dee"),
        fb(other, "thumbs", value=0),
    ]
    builds = {
        b_.candidate.representative_trace_id: b_.candidate
        for b_ in explain_candidates([a, b, other], feedback, now=NOW)
    }
    merged = builds[a.id]
    assert merged.member_trace_ids == [a.id, b.id]
    assert merged.count == 2 and merged.users == 2
    assert sorted(merged.feedback_ids) == sorted(f.id for f in feedback[:3])
    assert merged.signals == {"repeat_ask": 1.0, "thumbs_down": 1.0, "thumbs_up": 1.0}
    assert builds[other.id].member_trace_ids == [other.id]


def test_same_question_under_different_prompts_or_contexts_stays_apart() -> None:
    one = trace(
        "Why?",
        prompt="support",
        history=[{"role": "user", "content": "Is the sky blue?"}, {"role": "assistant", "content": "Yes."}],
    )
    two = trace(
        "Why?",
        prompt="support",
        history=[{"role": "user", "content": "Is tax due in April?"}, {"role": "assistant", "content": "Yes."}],
    )
    three = trace("Why?", prompt="billing", history=copy.deepcopy(one.input[1:3]))
    feedback = [fb(t, "pushback") for t in (one, two, three)]
    assert len(build_candidates([one, two, three], feedback, now=NOW)) == 3


def test_candidate_text_is_redacted_and_traces_are_not_touched() -> None:
    t = trace(
        "I'm jo@example.com, card 4111 1111 1111 1111 declined, why?",
        answer="Call us at +1 415-555-0132 from 10.0.0.7.",
    )
    original = t.model_copy(deep=True)
    feedback = [fb(t, "correction", text="Email jo@example.com the refund form.")]
    (build,) = explain_candidates([t], feedback, now=NOW)
    c = build.candidate
    assert c.input[-1]["content"] == "I'm [EMAIL], card [CARD] declined, why?"
    assert c.output_text == "Call us at [PHONE] from [IP]."
    assert c.expected_output == "Email [EMAIL] the refund form."
    assert build.redactions == {"email": 2, "card": 1, "phone": 1, "ip": 1}
    assert t == original


def test_expected_output_prefers_corrections_then_edited_pushback() -> None:
    a = trace("Give me a haiku about rain", at=NOW - timedelta(hours=3))
    b = trace("give me a haiku about rain please", at=NOW - timedelta(hours=2))
    only_pushback = trace("Name three prime numbers above 100")
    feedback = [
        fb(a, "pushback", evidence={"edited_text": "Rain taps the window"}),
        fb(b, "correction", text="Soft rain on the roof", at=NOW - timedelta(minutes=50)),
        fb(b, "correction", text="Grey rain on the roof", at=NOW - timedelta(minutes=10)),
        fb(only_pushback, "pushback", evidence={"edited_text": "101, 103, 107"}),
        fb(only_pushback, "pushback", evidence={"trace_ids": ["x"]}),
    ]
    by_rep = {c.representative_trace_id: c for c in build_candidates([a, b, only_pushback], feedback, now=NOW)}
    assert by_rep[a.id].expected_output == "Grey rain on the roof"  # newest correction in the cluster
    assert by_rep[only_pushback.id].expected_output == "101, 103, 107"


def test_representative_correction_beats_a_newer_one_from_another_member() -> None:
    a = trace("Spell necessary", at=NOW - timedelta(hours=3))
    b = trace("spell necessary please", at=NOW - timedelta(hours=2))
    feedback = [
        fb(a, "correction", text="necessary", at=NOW - timedelta(hours=1)),
        fb(b, "correction", text="neccessary", at=NOW - timedelta(minutes=1)),
    ]
    (c,) = build_candidates([a, b], feedback, now=NOW)
    assert c.expected_output == "necessary"


def test_build_is_stable_across_runs_and_input_order() -> None:
    traces = [
        trace(q, user=f"u{i}", at=NOW - timedelta(minutes=i))
        for i, q in enumerate(
            [
                "How do I reset my password?",
                "how can i reset my password",
                "What is the capital of France?",
                "Why is my invoice wrong?",
                "why is my invoice wrong",
                "Translate hello to German",
            ]
        )
    ]
    feedback = [
        fb(t, s, value=0 if s == "thumbs" else None)
        for t, s in zip(traces, ["thumbs", "repeat_ask", "abandon", "pushback", "thumbs", "regenerate"], strict=True)
    ]

    def summary(ts: list[Trace], fs: list[Feedback]) -> list[tuple]:
        return [
            (c.cluster_key, tuple(c.member_trace_ids), c.priority, c.representative_trace_id)
            for c in build_candidates(ts, fs, now=NOW)
        ]

    first = summary(traces, feedback)
    rng = random.Random(5)
    shuffled_t, shuffled_f = traces[:], feedback[:]
    rng.shuffle(shuffled_t)
    rng.shuffle(shuffled_f)
    assert summary(shuffled_t, shuffled_f) == first == summary(traces, feedback)
    assert len(first) == 4


def test_naive_datetimes_are_taken_as_utc() -> None:
    t = trace("Naive time question", at=datetime(2025, 3, 1, 11, 0))
    f = fb(t, "thumbs", value=0, at=datetime(2025, 3, 1, 11, 0))
    (c,) = build_candidates([t], [f], now=datetime(2025, 3, 8, 11, 0))
    assert c.priority == pytest.approx(0.9 * 0.5)


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"half_life_days": -1}, "half_life_days"),
        ({"half_life_days": 0}, "half_life_days"),
        ({"half_life_days": float("inf")}, "half_life_days"),
        ({"weights": {"thumbs_sideways": 1.0}}, "thumbs_sideways"),
        ({"weights": {"abandon": -0.1}}, "abandon"),
        ({"cluster_threshold": 101}, "cluster_threshold"),
        ({"rating_scale": (5, 1)}, "rating_scale"),
        ({"users_weigth": 1}, "users_weigth"),
    ],
)
def test_bad_config_is_rejected_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        CandidateConfig(**kwargs)


def test_partial_weights_merge_onto_defaults() -> None:
    config = CandidateConfig(weights={"abandon": 0.05})
    assert config.weights["abandon"] == 0.05 and config.weights["correction"] == 1.0


def test_unknown_signal_in_feedback_is_rejected_naming_it() -> None:
    t = trace("q")
    row = Feedback.model_construct(**{**fb(t, "abandon").model_dump(), "signal": "shrug"})
    with pytest.raises(ValidationError, match=r"shrug"):
        build_candidates([t], [row], now=NOW)
    with pytest.raises(ValidationError, match=r"unknown signal 'meh'"):
        score_evidence([Evidence("meh", 1.0, "u", NOW, "f9", t.id)], count=1, now=NOW)


@pytest.mark.parametrize(
    ("signal", "kwargs", "field"),
    [
        ("thumbs", {"value": 0.5}, "value"),
        ("thumbs", {}, "value"),
        ("rating", {"value": 7}, "value"),
        ("rating", {"value": 2, "metadata": {"scale": "five"}}, "metadata.scale"),
        ("correction", {"text": "  "}, "text"),
        ("abandon", {"strength": 1.5}, "strength"),
    ],
)
def test_malformed_feedback_is_rejected_naming_the_field(signal: str, kwargs: dict, field: str) -> None:
    t = trace("q")
    row = fb(t, signal, **kwargs)
    with pytest.raises(ValidationError, match=rf"feedback {row.id}: .*{field}"):
        build_candidates([t], [row], now=NOW)


def test_feedback_on_an_unknown_trace_is_rejected() -> None:
    t = trace("q")
    row = fb(t, "abandon")
    with pytest.raises(ValidationError, match=rf"feedback {row.id}: trace_id"):
        build_candidates([], [row], now=NOW)


def test_bad_judge_score_and_count_are_rejected() -> None:
    t = trace("q")
    with pytest.raises(ValidationError, match="judge_score"):
        build_candidates([t], [fb(t, "abandon")], now=NOW, judge_scores={t.id: 4.0})
    with pytest.raises(ValidationError, match="count"):
        score_evidence([Evidence("abandon", 1.0, "u", NOW, "f", "t")], count=0, now=NOW)
