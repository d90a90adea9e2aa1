"""Near-duplicate clustering: paraphrases merge, different questions stay apart, keys are stable."""

from __future__ import annotations

import random

import pytest
from rapidfuzz import fuzz

from workbench.candidates.cluster import (
    DEFAULT_THRESHOLD,
    WORD_THRESHOLD,
    cluster_key,
    cluster_texts,
    comparison_text,
    normalize_text,
)
from workbench.errors import ValidationError

RESET = [
    "How do I reset my password?",
    "how can i reset my password",
    "How do I reset my pasword??",
    "Please, how do I reset my password",
    "HOW DO I RESET MY PASSWORD",
]
DIFFERENT = [
    "What is the capital of France?",
    "What is the capital of Germany?",
    "Convert 10 celsius to fahrenheit",
    "Convert 10 fahrenheit to celsius",
    "Is it safe to eat raw eggs?",
    "Is it not safe to eat raw eggs?",
    "What is 17 * 23?",
    "What is 17 * 24?",
    "Reset password for the admin console of team Blue",
    "When did the Chernobyl disaster happen?",
    "Why did the Chernobyl disaster happen?",
    "My cat is sick after eating chocolate, what should I do?",
    "My car is sick after eating chocolate, what should I do?",
    "How do I configure logging in Django for production?",
    "How do I configure logging in Flask for production?",
]

BASES = [
    "How can I find the best 401k plan for my needs?",
    "How to protect my eyes when I stare at a computer screen all day",
    "What differences are there between ChatGPT and InstructGPT?",
    "When I buy a new TV, which specifications should I pay attention to?",
    "Write me an outline about the metaphorical use of time in The Great Gatsby",
    "How can I promote an app that I have built with no marketing budget?",
    "What is the syntax for functions, variables, classes and loops in Python?",
    "Which places are worth visiting within a two hour drive of San Diego?",
    "Could you give me a python script to dynamically deserialize json?",
    "Is the Bongcloud a strong chess opening to play as White?",
    "Explain the difference between a list and a tuple in Python",
    "Summarize the causes of the French revolution in a paragraph",
]


def _typos(text: str, edits: int, rng: random.Random) -> str:
    for _ in range(edits):
        i = rng.randrange(len(text))
        text = text[:i] + text[i + 1 :] if rng.random() < 0.5 else text[:i] + rng.choice("aeiou") + text[i:]
    return text


def _variants(seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for base in BASES:
        out.append(base)
        out.extend(_typos(base, rng.randint(1, 3), rng) for _ in range(6))
        out.append(base.lower().rstrip("?"))
    rng.shuffle(out)
    return out


def _groups(texts: list[str], **kwargs: object) -> set[frozenset[str]]:
    return {frozenset(texts[i] for i in c.members) for c in cluster_texts(texts, **kwargs)}


def test_paraphrase_level_duplicates_become_one_cluster() -> None:
    texts = RESET + DIFFERENT
    clusters = cluster_texts(texts, order=list(range(len(texts))))
    reset = [c for c in clusters if 0 in c.members]
    assert len(reset) == 1
    assert sorted(reset[0].members) == list(range(len(RESET)))
    assert reset[0].count == len(RESET)


def test_different_questions_stay_apart() -> None:
    texts = RESET + DIFFERENT
    groups = _groups(texts, order=list(range(len(texts))))
    for question in DIFFERENT:
        assert frozenset({question}) in groups, question


def test_every_text_is_in_exactly_one_cluster() -> None:
    texts = _variants(1) + DIFFERENT
    clusters = cluster_texts(texts, order=list(range(len(texts))))
    members = sorted(i for c in clusters for i in c.members)
    assert members == list(range(len(texts)))
    assert len({c.key for c in clusters}) == len(clusters)


NEGATIONS = {"not", "no", "never", "nor", "none", "nothing", "nobody", "neither", "without", "cannot"}


QUESTION_WORDS = {"what", "when", "where", "which", "who", "whom", "whose", "why", "how"}


def _guard(text: str) -> tuple[int, set[str], list[str]]:
    tokens = normalize_text(text).split()
    negations = sum(t in NEGATIONS for t in tokens)
    return negations, {t for t in tokens if t in QUESTION_WORDS}, sorted(t for t in tokens if t.isdigit())


def _every_word_matched(a: str, b: str) -> bool:
    return all(max(fuzz.ratio(w, v) for v in b.split()) >= WORD_THRESHOLD for w in a.split()) and all(
        max(fuzz.ratio(w, v) for v in a.split()) >= WORD_THRESHOLD for w in b.split()
    )


def _exact_leader_clustering(texts: list[str], order: list[int]) -> set[frozenset[str]]:
    """Independent oracle of the documented rule: all pairs compared, no blocking.

    In canonical order, a text whose comparison text was seen before follows that first occurrence;
    otherwise it joins the most similar earlier leader with the same guard (ties: earliest), or leads.
    """
    ranked = sorted(range(len(texts)), key=lambda i: order[i])
    leaders: list[int] = []
    leader_of_text: dict[str, int] = {}
    groups: dict[int, list[str]] = {}
    for i in ranked:
        mine = comparison_text(texts[i])
        best = leader_of_text.get(mine)
        if best is None:
            best_score = -1.0
            for leader in leaders:
                score = fuzz.ratio(mine, comparison_text(texts[leader]))
                theirs = comparison_text(texts[leader])
                if (
                    score >= DEFAULT_THRESHOLD
                    and score > best_score
                    and _guard(texts[i]) == _guard(texts[leader])
                    and _every_word_matched(mine, theirs)
                ):
                    best, best_score = leader, score
            if best is None:
                leaders.append(i)
                best = i
            leader_of_text[mine] = best
        groups.setdefault(best, []).append(texts[i])
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocked_clustering_matches_exhaustive_oracle_on_typo_variants(seed: int) -> None:
    texts = _variants(seed)
    order = list(range(len(texts)))
    assert _groups(texts, order=order) == _exact_leader_clustering(texts, order)


def test_members_are_within_threshold_of_their_representative() -> None:
    texts = _variants(4) + RESET + DIFFERENT
    for cluster in cluster_texts(texts, order=list(range(len(texts)))):
        rep = comparison_text(texts[cluster.representative])
        for i in cluster.members:
            assert fuzz.ratio(rep, comparison_text(texts[i])) >= DEFAULT_THRESHOLD


def test_keys_and_members_are_stable_across_runs_and_input_order() -> None:
    texts = _variants(5) + RESET + DIFFERENT
    order = [f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}|t{i}" for i in range(len(texts))]
    first = {
        (c.key, frozenset(texts[i] for i in c.members), texts[c.representative])
        for c in cluster_texts(texts, order=order)
    }
    again = {
        (c.key, frozenset(texts[i] for i in c.members), texts[c.representative])
        for c in cluster_texts(texts, order=order)
    }
    perm = list(range(len(texts)))
    random.Random(9).shuffle(perm)
    shuffled = [texts[i] for i in perm]
    shuffled_order = [order[i] for i in perm]
    third = {
        (c.key, frozenset(shuffled[i] for i in c.members), shuffled[c.representative])
        for c in cluster_texts(shuffled, order=shuffled_order)
    }
    assert first == again == third


def test_representative_is_the_earliest_member_and_key_follows_it() -> None:
    texts = ["how can i reset my password", "How do I reset my password?"]
    (cluster,) = cluster_texts(texts, order=[2, 1])
    assert cluster.representative == 1
    assert cluster.members == (1, 0)
    assert cluster.key == cluster_key(normalize_text(texts[1]))


def test_appending_newer_texts_keeps_existing_keys() -> None:
    texts = _variants(6)
    half = len(texts) // 2
    before = {c.key for c in cluster_texts(texts[:half], order=list(range(half)))}
    after = {c.key for c in cluster_texts(texts, order=list(range(len(texts))))}
    assert before <= after


def test_scopes_keep_identical_texts_apart_and_change_the_key() -> None:
    texts = ["How do I reset my password?"] * 2
    clusters = cluster_texts(texts, scopes=["support", "billing"])
    assert len(clusters) == 2
    assert clusters[0].key != clusters[1].key


def test_texts_without_words_get_distinct_keys() -> None:
    clusters = cluster_texts(["🙂", "🔥🔥", "", "🙂"])
    assert len(clusters) == 3
    assert len({c.key for c in clusters}) == 3


def test_empty_input_gives_no_clusters() -> None:
    assert cluster_texts([]) == []


@pytest.mark.parametrize("threshold", [0, -5, 100.5, float("nan")])
def test_bad_threshold_is_rejected_naming_the_field(threshold: float) -> None:
    with pytest.raises(ValidationError, match="threshold"):
        cluster_texts(["a", "b"], threshold=threshold)


def test_mismatched_order_and_scopes_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="order"):
        cluster_texts(["a", "b"], order=[1])
    with pytest.raises(ValidationError, match="scopes"):
        cluster_texts(["a", "b"], scopes=["x"])
