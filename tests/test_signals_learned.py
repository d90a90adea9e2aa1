"""The learned detector families on worked examples of every hard-negative kind in
tests/data/implicit_eval/CONVENTIONS.md, in several languages. The examples are written here, for these
tests (none is copied from the labelled sets). Each is (previous message, answer, reply) and what the
reply must *not* be (or must be). A miss the shipped model is known to make is an xfail(strict=True),
so it is listed, and the test fails the day it is fixed (then the mark goes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workbench.errors import ConfigError
from workbench.feedback import SignalConfig, detect
from workbench.feedback.signals import embeddings_available
from workbench.feedback.signals.dataset import traces

T0 = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=2)
FAMILIES = [
    "learned",
    pytest.param(
        "embedding",
        marks=pytest.mark.skipif(not embeddings_available(), reason="the embeddings extra (MiniLM) is not installed"),
    ),
]


def session(*turns: tuple[float, str, str], sid: str = "s") -> dict[str, Any]:
    return {"session_id": sid, "user_id": "u", "turns": [{"t": t, "user": u, "assistant": a} for t, u, a in turns]}


def fired(family: str, data: dict[str, Any], now: datetime | None = LATER) -> set[tuple[str, int]]:
    built = traces(data, T0)
    index = {t.id: k for k, t in enumerate(built)}
    return {(f.signal, index[f.trace_id]) for f in detect(built, SignalConfig(detector=family), now)}


def reply(prev: str, answer: str, text: str, gap: float = 40.0) -> dict[str, Any]:
    return session((0.0, prev, answer), (gap, text, "OK."))


# (kind, previous message, answer, reply, the signal the reply must not carry)
HARD_NEGATIVES = [
    (
        "same_topic_followup",
        "How do I create a virtualenv in Python?",
        "Run `python -m venv .venv`, then activate it with `source .venv/bin/activate`.",
        "And how do I delete it again later?",
        "repeat_ask",
    ),
    (
        "changed_number_or_entity",
        "is 97 prime?",
        "Yes, 97 is prime: it has no divisors other than 1 and 97.",
        "is 221 prime?",
        "repeat_ask",
    ),
    (
        "changed_number_or_entity",
        "Wo ist meine Bestellung #48213?",
        "Bestellung #48213 wurde gestern versandt und kommt morgen an.",
        "Und Bestellung #48217?",
        "repeat_ask",
    ),
    (
        "answers_assistant_question",
        "Write me a function that reverses a string.",
        "Sure. Which language would you like it in, Python or JavaScript?",
        "no, JavaScript please",
        "pushback",
    ),
    (
        "answers_assistant_question",
        "Reserva una mesa para esta noche.",
        "Claro. ¿Para cuántas personas y a qué hora?",
        "no, solo dos personas, a las nueve",
        "pushback",
    ),
    (
        "self_correction",
        "how do I round integers in numpy?",
        "Integers are already whole numbers, so there is nothing to round.",
        "sorry, I meant floats",
        "pushback",
    ),
    (
        "self_correction",
        "Comment convertir des miles en km ?",
        "1 mile = 1,609 km : multipliez par 1,609.",
        "pardon, je voulais dire des miles nautiques",
        "pushback",
    ),
    (
        "thanks_then_new_request",
        "Is the pharmacy on Main Street open on Saturday?",
        "Yes, it is open on Saturdays from 9:00 to 13:00.",
        "thanks. and sunday?",
        "positive",
    ),
    (
        "thanks_then_new_request",
        "Wie spät ist es in Tokio, wenn es in Berlin 12 Uhr ist?",
        "In Tokio ist es dann 20 Uhr (im Winter).",
        "ok danke, nächste Frage: und in Sydney?",
        "positive",
    ),
    (
        "quotes_answer",
        "How should I design my REST endpoint for payments?",
        "Make the POST endpoint idempotent so a retried request does not charge twice.",
        "what does 'idempotent' mean in your answer?",
        "pushback",
    ),
    (
        "no_problem",
        "Can you check my SQL? SELECT * FROM users WHERE id = 3",
        "Your query is fine as written. Sorry for the slow reply!",
        "no problem, thanks",
        "pushback",
    ),
    (
        "no_problem",
        "¿Cuánto tarda un envío a Canarias?",
        "Entre 5 y 7 días laborables. Perdona la espera.",
        "no pasa nada, gracias",
        "pushback",
    ),
    (
        "world_negation",
        "What's the climate like in Lima?",
        "Lima has a mild desert climate: cool, humid winters and warm summers.",
        "it doesn't rain much there, right?",
        "pushback",
    ),
    (
        "format_change_after_good_answer",
        "What are the three largest planets?",
        "Jupiter, Saturn and Uranus, in that order.",
        "perfect. now as a table with their diameters please",
        "repeat_ask",
    ),
    (
        "polite_disagreement_with_third_party",
        "My teacher says Pluto is still a planet. Is that right?",
        "Since 2006 the IAU classifies Pluto as a dwarf planet, not a planet.",
        "I think my teacher is wrong then, the textbook is old",
        "pushback",
    ),
    (
        "thanks_in_advance",
        "I'll send you my CV next.",
        "Sure, paste it here and I'll review it.",
        "Here it is, thanks in advance: Jane Doe, 5 years of data analysis at ACME.",
        "positive",
    ),
]

# (kind, previous message, answer, reply, the signal the reply must carry)
POSITIVES = [
    (
        "pushback",
        "What's the capital of Spain?",
        "Lisbon is the capital of Spain.",
        "no, Lisbon is not the capital of Spain",
        "pushback",
    ),
    (
        "pushback",
        "my python script crashes with KeyError 'id'",
        "Wrap the lookup in try/except KeyError.",
        "still getting the same error",
        "pushback",
    ),
    (
        "sarcasm_is_pushback",
        "How do I undo my last git commit?",
        "Git is a distributed version control system created by Linus Torvalds in 2005.",
        "great, another useless answer. I asked how to UNDO a commit",
        "pushback",
    ),
    (
        "positive",
        "How do I list hidden files in Linux?",
        "Use `ls -a` to include files starting with a dot.",
        "perfect, that worked, thanks!",
        "positive",
    ),
    (
        "positive",
        "Wie setze ich mein Passwort zurück?",
        "Klicke auf 'Passwort vergessen' und folge dem Link.",
        "Super, hat geklappt, vielen Dank!",
        "positive",
    ),
    (
        "repeat_ask",
        "how many grams of protein do I need per day? I weigh 80 kg",
        "Protein is a macronutrient found in meat, fish, eggs and legumes.",
        "but how many grams per day for me, at 80 kg?",
        "repeat_ask",
    ),
]
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("learned", "pushback-0"): "'no, Lisbon is not the capital of Spain' scores under the threshold",
    ("learned", "sarcasm_is_pushback-2"): "sarcasm: the hashed wording of 'great, ...' reads as praise",
    ("embedding", "pushback-0"): "'no, Lisbon is not the capital of Spain' scores under the threshold",
    ("embedding", "sarcasm_is_pushback-2"): "sarcasm: the hashed wording of 'great, ...' reads as praise",
}


def _case(kind: str, family: str) -> Any:
    reason = KNOWN_MISSES.get((family, kind))
    return pytest.mark.xfail(strict=True, reason=reason) if reason else ()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("kind", "prev", "answer", "text", "signal"),
    HARD_NEGATIVES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(HARD_NEGATIVES)],
)
def test_hard_negatives_do_not_fire(
    family: str, kind: str, prev: str, answer: str, text: str, signal: str, request: pytest.FixtureRequest
) -> None:
    for mark in [_case(f"{kind}-{HARD_NEGATIVES.index((kind, prev, answer, text, signal))}", family)]:
        if mark:
            request.applymarker(mark)
    assert (signal, 0) not in fired(family, reply(prev, answer, text))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("kind", "prev", "answer", "text", "signal"), POSITIVES, ids=[f"{c[0]}-{i}" for i, c in enumerate(POSITIVES)]
)
def test_clear_reactions_fire(
    family: str, kind: str, prev: str, answer: str, text: str, signal: str, request: pytest.FixtureRequest
) -> None:
    for mark in [_case(f"{kind}-{POSITIVES.index((kind, prev, answer, text, signal))}", family)]:
        if mark:
            request.applymarker(mark)
    assert (signal, 0) in fired(family, reply(prev, answer, text))


@pytest.mark.parametrize("family", FAMILIES)
def test_identical_question_typed_again_is_a_repeat_ask_and_a_resend_is_a_regeneration(family: str) -> None:
    question, answer = "How do I rename a local git branch?", "Branches are pointers to commits."
    typed = session((0.0, question, answer), (3600.0, question, "Use git branch -m new-name."))
    assert ("repeat_ask", 0) in fired(family, typed)  # typed again with the answer in the history
    resent = {
        "session_id": "r",
        "user_id": "u",
        "turns": [
            {"t": 0.0, "user": question, "assistant": answer},
            {"t": 8.0, "user": question, "assistant": "Use git branch -m new-name.", "labels": {"regenerate": True}},
        ],
    }
    found = fired(family, resent)
    assert ("regenerate", 0) in found and ("repeat_ask", 0) not in found


@pytest.mark.parametrize("family", FAMILIES)
def test_silence_after_a_good_answer_is_never_abandonment(family: str) -> None:
    good = session((0.0, "What's the boiling point of water at sea level?", "100 °C (212 °F) at sea level."))
    assert {s for s, _ in fired(family, good)} <= {"positive"}
    short = session(
        (0.0, "Translate 'good morning' to Italian", "Buongiorno."), (30.0, "and good night?", "Buonanotte.")
    )
    assert not {s for s, _ in fired(family, short) if s == "abandon"}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_failed_last_answer_after_pushback_is_abandonment_once_the_session_went_quiet(family: str) -> None:
    failed = session(
        (0.0, "How do I cancel my gym membership online?", "Our gym offers yoga, spinning and a sauna."),
        (
            40.0,
            "That's not what I asked. How do I CANCEL my membership?",
            "Our gym offers yoga, spinning and a sauna, open every day.",
        ),
    )
    assert ("abandon", 1) in fired(family, failed)
    last = T0 + timedelta(seconds=40)
    assert "abandon" not in {s for s, _ in fired(family, failed, now=last + timedelta(minutes=5))}  # undecided
    assert "abandon" not in {s for s, _ in fired(family, failed, now=None)}


_MISSED_REJECTION = "scores under the pushback threshold (the other-language cue lifts it, not far enough)"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("prev", "answer", "text"),
    [
        (
            "Wie viele Einwohner hat Wien?",
            "Wien hat etwa 500.000 Einwohner.",
            "Das stimmt nicht, Wien hat fast zwei Millionen.",
        ),
        ("¿Cuál es la capital de Australia?", "La capital de Australia es Sídney.", "Eso no es correcto, es Canberra."),
        pytest.param(
            "Hoe laat sluit de bibliotheek op zaterdag?",
            "De bibliotheek is open van 9 tot 17 uur.",
            "Dat klopt niet, op zaterdag sluiten ze om 13 uur.",
            marks=pytest.mark.xfail(strict=True, reason=_MISSED_REJECTION),
        ),
        pytest.param(
            "Сколько будет 12 умножить на 12?",
            "12 умножить на 12 равно 124.",
            "Неправильно, это 144.",
            marks=pytest.mark.xfail(strict=True, reason=_MISSED_REJECTION),
        ),
        pytest.param(
            "東京タワーの高さは？",
            "東京タワーの高さは634メートルです。",
            "違います、それはスカイツリーです。",
            marks=pytest.mark.xfail(strict=True, reason=_MISSED_REJECTION),
        ),
    ],
    ids=["de", "es", "nl", "ru", "ja"],
)
def test_a_rejection_in_another_language_is_pushback(family: str, prev: str, answer: str, text: str) -> None:
    assert ("pushback", 0) in fired(family, reply(prev, answer, text))  # on the answer pushed back on


@pytest.mark.parametrize("family", FAMILIES)
def test_a_question_about_what_is_wrong_is_not_pushback_in_german_either(family: str) -> None:
    data = reply(
        "Mein Python-Skript bricht ab.",
        "Welche Fehlermeldung bekommen Sie?",
        "Was ist falsch an Zeile 3? Da steht nur print(x).",
    )
    assert ("pushback", 0) not in fired(family, data)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("question", "answer"),
    [
        (
            "Ab wann muss ich mit meinem Baby bei Fieber zum Arzt?",
            "Ich kann Ihnen leider keine medizinischen Ratschläge geben.",
        ),
        ("Comment annuler ma commande ?", "Désolé, je ne peux pas vous aider avec cette demande."),
        ("注文をキャンセルしたいです", "申し訳ありませんが、その件にはお答えできません。"),
    ],
    ids=["de", "fr", "ja"],
)
def test_a_refusal_in_any_language_is_evidence_that_the_last_answer_failed(
    family: str, question: str, answer: str
) -> None:
    """A refusal is a failed answer whatever the language (the English-only check let these go by as silence)."""
    assert ("abandon", 0) in fired(family, session((0.0, question, answer)))


def test_non_answers_and_cut_off_answers_are_told_from_answers_that_only_look_alike() -> None:
    from workbench.feedback.signals.features import non_answer, unterminated

    declines = [
        "I'm afraid I can't help with billing questions.",
        "Please contact our support team by email.",
        "Leider kann ich dazu nichts sagen.",
        "Lo siento, no puedo ayudarte con eso.",
        "Przepraszam, nie mogę pomóc w tej sprawie.",
        "Не могу ответить на этот вопрос.",
        "我无法回答这个问题。",
        "申し訳ありませんが、お手伝いできません。",
    ]
    answers = [  # the same words about the world, not about the assistant
        "You can't undo a pushed commit without rewriting history.",
        "Das kann man nicht rückgängig machen.",
        "Si la conexión no funciona, reinicia el router.",
        "この操作は元に戻すことができません。",
        "如果连接失败，请重启路由器。",
    ]
    assert [non_answer(a) for a in declines] == [True] * len(declines)
    assert [non_answer(a) for a in answers] == [False] * len(answers)
    cut = ["1. Loosen the lug nuts 2. Jack up the car 3. Remove the", "Primero pela las patatas y luego"]
    whole = [
        "Use `ls -la`",
        "Paris.",
        "git reset --soft HEAD~1 で取り消せます。",
        "Yes (since 3.8)",
        "42",
        "```\nls\n```",
    ]
    assert [unterminated(a) for a in cut] == [True, True]
    assert [unterminated(a) for a in whole] == [False] * len(whole)


@pytest.mark.parametrize("family", FAMILIES)
def test_findings_say_which_detector_and_which_evidence(family: str) -> None:
    data = reply(
        "How do I list hidden files in Linux?",
        "Use `ls -a` to include files starting with a dot.",
        "perfect, that worked, thanks!",
    )
    built = traces(data, T0)
    (hit,) = [f for f in detect(built, SignalConfig(detector=family), LATER) if f.signal == "positive"]
    assert hit.detector == f"positive.{family}@1" and hit.evidence["detector"] == family
    assert hit.evidence["probability"] >= hit.evidence["threshold"] and hit.evidence["why"]
    assert hit.strength == hit.evidence["probability"] and hit.evidence["reply_trace_id"] == built[1].id


def test_thresholds_can_be_set_per_signal() -> None:
    data = reply("How do I list hidden files in Linux?", "Use `ls -a`.", "perfect, that worked, thanks!")
    built = traces(data, T0)
    strict = SignalConfig(positive={"threshold": 1.0})
    assert [f for f in detect(built, strict, LATER) if f.signal == "positive"] == []
    assert [f for f in detect(built, SignalConfig(), LATER) if f.signal == "positive"]


def test_embedding_family_without_the_extra_is_one_clear_line() -> None:
    if embeddings_available():
        pytest.skip("the embeddings extra is installed")
    from workbench.feedback.signals.embeddings import load_encoder

    load_encoder.cache_clear()
    with pytest.raises(ConfigError, match=r"^the embedding detector needs the embeddings extra: pip install"):
        detect(traces(reply("a", "b", "c"), T0), SignalConfig(detector="embedding"), LATER)
