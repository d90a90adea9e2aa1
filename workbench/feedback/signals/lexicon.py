"""Word lists, precompiled patterns and the lexical "is this the same question again?" test.

Why a hand-made comparison instead of one similarity score: every off-the-shelf score (token-set
ratio, TF-IDF cosine, Jaccard) rates a *refinement* ("sort a list" -> "sort a list in descending
order", "... in Python 3.12", "and for Germany?") as highly similar, because the refinement contains
the original. A repeat re-asks with *fewer or vaguer* words; a refinement *adds* something specific. So
the test is asymmetric: B repeats A when B covers most of A's content terms and adds no new content
(numbers, names, constraint words, a new clause, a follow-up opener). Typos are matched with rapidfuzz's
Damerau (OSA) distance, one slip per word, so "pyhton" meets "python" but "install" never meets "uninstall".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from rapidfuzz.distance import OSA

from .phrases import may_reject, strip_rejections, word_search, word_sub

__all__ = ["Terms", "analyze", "compare_questions", "has_content", "normalize", "stem", "term"]

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "`": "'"})
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+(?:['.][a-z0-9]+)*")
_RAW_WORD = re.compile(r"[A-Za-z0-9]+(?:['.][A-Za-z0-9]+)*")
_SENTENCE_MARKS = frozenset(".!?:;\n")
_SENTENCE_BREAK = re.compile(r"[.!?\n]")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def normalize(text: str) -> str:
    """Lowercase, straight quotes, collapsed whitespace: the form every pattern below expects."""
    return _SPACE.sub(" ", text.translate(_QUOTES)).strip().lower()


# Function words plus the filler people add or drop when they re-ask ("please", "again", "just tell me").
STOPWORDS = _words(
    """a an the i i'm i've i'd me my mine myself we us our you your yours he him his she her it it's its they
    them their this that these those there here is are was were be been being am do does did doing done
    can could would should will shall may might must of for about in on at with by and or to from into
    onto as if so than then too very what what's whats how how's which who whom whose why when where
    whats hows whens wheres is there any some each every all both either please pls plz kindly just
    simply actually really exactly still again once tell explain show give help know want need wanted
    needed way ways best correct proper properly possible question answer asked ask asking mean meant
    try trying tried wondering wonder someone anyone somebody anybody thing things get got getting make
    making made use using used able like kind ok okay hey hi hello um uh hmm well yes yeah yep sure
    anyway supposed one ones let let's lets go going gonna wanna dont don't doesn't isn't aren't can't
    cannot won't didn't im ive id youre you're thats that's it'd give me go do good idea clue anything
    something say said here's there's now thanks thank thx ty cheers great perfect awesome cool nice
    bye goodbye sorry hmm oh ah lol rephrase rephrased rephrasing repeat repeating wrong incorrect outdated
    useless has have had having many much meaning means you'd you'll i'll we'll they're we're recommend
    suggest seem seems seemed off weird strange odd confusing unclear sense clear helpful think guess
    believe command syntax formula procedure technique approach tip tips recipe"""
)

# Words that narrow or extend a question. New ones in B make B a refinement, not a repeat.
CONSTRAINT_WORDS = _words(
    """without instead only except but rather excluding besides also too more less fewer
    shorter longer simpler faster slower cheaper better worse example examples step steps detail
    details detailed briefly brief summary summarize summarise not no never n't alternative
    alternatives other another else opposite inverse unlike
    including plus additionally whereas"""
)

# A small canonical map, applied before stemming: verbs people swap when rephrasing, irregular forms
# the suffix stripper cannot reach, and common abbreviations.
SYNONYMS: dict[str, str] = {
    "remove": "delete",
    "erase": "delete",
    "eliminate": "delete",
    "removing": "delete",
    "deleting": "delete",
    "wipe": "delete",
    "create": "build",
    "generate": "build",
    "construct": "build",
    "produce": "build",
    "built": "build",
    "fix": "solve",
    "resolve": "solve",
    "repair": "solve",
    "troubleshoot": "solve",
    "error": "problem",
    "issue": "problem",
    "bug": "problem",
    "errors": "problem",
    "issues": "problem",
    "modify": "change",
    "alter": "change",
    "edit": "change",
    "adjust": "change",
    "begin": "start",
    "began": "start",
    "begun": "start",
    "launch": "start",
    "stop": "end",
    "finish": "end",
    "terminate": "end",
    "large": "big",
    "huge": "big",
    "small": "little",
    "tiny": "little",
    "quick": "fast",
    "quickly": "fast",
    "quickest": "fast",
    "fastest": "fast",
    "rapid": "fast",
    "find": "locate",
    "found": "locate",
    "search": "locate",
    "lookup": "locate",
    "display": "print",
    "output": "print",
    "describe": "explain",
    "definition": "define",
    "combine": "merge",
    "join": "merge",
    "concatenate": "merge",
    "concat": "merge",
    "wrote": "write",
    "written": "write",
    "writer": "write",
    "author": "write",
    "writes": "write",
    "fell": "fall",
    "fallen": "fall",
    "ran": "run",
    "took": "take",
    "taken": "take",
    "broke": "break",
    "broken": "break",
    "chose": "choose",
    "chosen": "choose",
    "ate": "eat",
    "eaten": "eat",
    "grew": "grow",
    "grown": "grow",
    "threw": "throw",
    "thrown": "throw",
    "bought": "buy",
    "brought": "bring",
    "caught": "catch",
    "taught": "teach",
    "sold": "sell",
    "sent": "send",
    "spent": "spend",
    "paid": "pay",
    "kept": "keep",
    "drove": "drive",
    "driven": "drive",
    "sign": "symptom",
    "signs": "symptom",
    "str": "string",
    "int": "integer",
    "dict": "dictionary",
    "func": "function",
    "env": "environment",
    "temp": "temperature",
    "info": "information",
    "config": "configuration",
    "db": "database",
    "repo": "repository",
    "docs": "documentation",
    "app": "application",
    "num": "number",
    "reversal": "reverse",
    "reversed": "reverse",
    "reversing": "reverse",
    "cities": "city",
    "countries": "country",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "yearly": "year",
}

_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ers", "ed", "ly", "es", "s")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Cheap suffix stripping so "sorting"/"sorted"/"sort" and "values"/"value" compare equal."""
    word = SYNONYMS.get(word, word)
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 3 and not word.endswith("ss"):
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = SYNONYMS.get(word[: -len(suffix)], word[: -len(suffix)])
                break
    if len(word) >= 4 and word.endswith("e") and not word.endswith("ee"):
        word = word[:-1]
    return word


@lru_cache(maxsize=65536)
def term(word: str) -> str:
    """The comparable form of a word: "" for filler (a stopword, or one with two letters swapped,
    like "plaese"), else its stem."""
    if word in STOPWORDS or len(word) < 2:
        return ""
    if len(word) >= 5:
        filler = _FILLER_ANAGRAMS.get("".join(sorted(word)))
        if filler is not None and OSA.distance(word, filler) == 1:
            return ""
    stemmed = stem(word)
    return "" if stemmed in STOPWORDS else stemmed


_FILLER_ANAGRAMS = {"".join(sorted(w)): w for w in STOPWORDS if len(w) >= 5}


_FOLLOWUP = re.compile(
    r"^(?:and|also|plus|but|now|then|next|instead|another|alternatively|"
    r"ok(?:ay)?[,!.]?\s+(?:and|now|what|how|so|then|but|can|could)|"
    r"what about|how about|what if|and if|same (?:for|but|with|thing for|question for)|"
    r"in (?:that|this) case|one more (?:question|thing)|follow[- ]?up|"
    r"(?:is|does|do|can|could|will|would|should|was|were|are|did|has|have) "
    r"(?:it|that|this|they|those|these|there|he|she)|"
    r"(?:why|how come) (?:is|does|did|do|would|was|are) (?:it|that|this|they))\b"
)
_CLAUSE = re.compile(
    r"(?:and|also|plus|then)\s+(?:what|how|why|when|where|which|who|is|are|can|could|does|do|did|"
    r"was|were|should|will|would)\b"
)
_QWORDS = frozenset(("why", "when", "where", "who"))
_DIRECTION_WORDS = frozenset(("to", "from", "into", "than", "vs", "versus", "over", "before", "after"))
REASK = re.compile(
    r"(?:again|i (?:already |just )?asked|my question (?:is|was)|let me rephrase|to rephrase|rephras\w*|"
    r"in other words|i repeat|once more|one more time|you didn'?t answer|didn'?t answer my|"
    r"answer (?:my|the) question|what i (?:asked|want|wanted|need) is|asking again|i'?ll ask again|"
    r"(?:can|could) you (?:just|simply) (?:tell|answer|say)|just (?:tell me|answer))\b"
)


class Terms(NamedTuple):
    """What one user turn says, reduced to what the repeat test needs (computed once per turn)."""

    key: str  # punctuation-free normalised text: equal keys are a verbatim repeat
    content: tuple[str, ...]  # stemmed content terms in first-seen order, no duplicates
    constraints: frozenset[str]
    raw: str  # the text as typed: names are told by their capitals (see _named)
    followup: bool
    clause: bool
    reask: bool
    pairs: frozenset[tuple[str, str]]  # (term before, term after) around to/from/into/than/vs...
    qwords: frozenset[str]  # why/when/where/who: "when did X" and "why did X" are different questions


def has_content(sentence: str, at_least: int = 1) -> bool:
    """Whether the text has at least ``at_least`` content words (not filler, not constraint words)."""
    found = 0
    for word in _WORD.findall(sentence):
        if word not in CONSTRAINT_WORDS and term(word):
            found += 1
            if found >= at_least:
                return True
    return False


def _question_text(norm: str, complaint: bool | None = None) -> tuple[str, bool]:
    """The part of a turn that asks something: re-ask markers ("I asked:", "again") cut out, complaint
    phrases ("That's not what I asked.") cut out, and sentences with nothing left dropped."""
    reask = word_search(REASK, norm) is not None
    if complaint is None:
        complaint = may_reject(norm)
    if not complaint and not _SENTENCE_BREAK.search(norm):
        text = word_sub(REASK, norm) if reask else norm
        return text.strip(" ,.:;-!?"), reask
    sentences = _SENTENCE_SPLIT.split(norm)
    kept: list[str] = []
    for sentence in sentences:
        stripped = strip_rejections(sentence) if complaint else sentence
        if reask:
            stripped = word_sub(REASK, stripped)
        if stripped != sentence and not has_content(stripped, 2 if len(sentences) > 1 else 1):
            continue
        if len(sentences) > 1 and not has_content(stripped):
            continue
        kept.append(stripped)
    text = " ".join(kept) if kept else (word_sub(REASK, norm) if reask else norm)
    return text.strip(" ,.:;-!?"), reask


def analyze(norm: str, raw: str, complaint: bool | None = None) -> Terms:
    """Reduce a normalised user turn (``raw`` is the same text before lowercasing) to its Terms.

    ``complaint``: whether the text contains a rejection phrase, when the caller already knows.
    """
    text, reask = _question_text(norm, complaint)
    words = _WORD.findall(text)
    content: dict[str, None] = {}
    constraints: set[str] = set()
    terms: list[str] = []
    for word in words:
        if word.endswith("n't"):
            constraints.add("not")
            terms.append("")
            continue
        if word in CONSTRAINT_WORDS:
            constraints.add(word)
            terms.append("")
            continue
        t = term(word)
        terms.append(t)
        if t:
            content[t] = None
    pairs: set[tuple[str, str]] = set()
    for i, word in enumerate(words):
        if word in _DIRECTION_WORDS:
            before = next((t for t in reversed(terms[max(0, i - 3) : i]) if t), "")
            after = next((t for t in terms[i + 1 : i + 4] if t), "")
            if before and after:
                pairs.add((before, after))
    return Terms(
        key=" ".join(words),
        content=tuple(content),
        constraints=frozenset(constraints),
        raw=raw,
        followup=_FOLLOWUP.match(text) is not None,
        clause=word_search(_CLAUSE, text) is not None,
        reask=reask,
        pairs=frozenset(pairs),
        qwords=frozenset(w for w in words if w in _QWORDS),
    )


def _typo(x: str, y: str) -> bool:
    """One slip of the keyboard (two for long words): Damerau (OSA) distance, not a shared prefix,
    so "instal"/"uninstal" and "thigh"/"thing" stay different while "pyhton"/"python" match."""
    shorter = min(len(x), len(y))
    budget = 2 if shorter >= 9 else 1
    if shorter < 5 or abs(len(x) - len(y)) > budget:
        return False
    return OSA.distance(x, y, score_cutoff=budget) <= budget


def _fuzzy_match(term: str, pool: list[str]) -> int:
    """Index of a typo variant of ``term`` in ``pool``, or -1."""
    for i, other in enumerate(pool):
        if _typo(term, other):
            return i
    return -1


def compare_questions(
    a: Terms,
    b: Terms,
    *,
    min_coverage: float,
    min_coverage_reask: float,
    max_novel_ratio: float,
) -> tuple[float, str]:
    """Decide whether turn ``b`` re-asks turn ``a``: (similarity, "") when it does, (0, reason) when not.

    The reason names the rule that rejected it (kept for evidence, debugging and the quality bench).
    """
    if a.key == b.key and a.content:
        return 1.0, ""
    if not a.content or not b.content:
        return 0.0, "no_content"
    if b.followup and not a.followup:
        return 0.0, "followup_opener"
    if b.clause and not a.clause:
        return 0.0, "new_clause"
    if b.constraints - a.constraints:
        return 0.0, "new_constraint"
    if a.qwords and b.qwords and not a.qwords & b.qwords:
        return 0.0, "other_question_word"
    a_set = set(a.content)
    b_set = set(b.content)
    unmatched_a = [t for t in a.content if t not in b_set]
    matched = len(a.content) - len(unmatched_a)
    floor = min_coverage_reask if b.reask else min_coverage
    b_only = [t for t in b.content if t not in a_set]
    need = floor * len(a.content)
    if matched + min(len(unmatched_a), len(b_only)) < need or (
        matched < need and matched + min(sum(len(t) >= 5 for t in unmatched_a), sum(len(t) >= 5 for t in b_only)) < need
    ):  # even if every other (long) term were a typo variant
        return 0.0, _soft("low_coverage", b_only)
    novel: list[str] = []
    alias: dict[str, str] = {}  # b's typo variants -> a's spelling
    for t in b_only:
        i = _fuzzy_match(t, unmatched_a) if unmatched_a else -1
        if i >= 0:
            alias[t] = unmatched_a.pop(i)
            matched += 1
        else:
            novel.append(t)
    if matched < need:
        return 0.0, _soft("low_coverage", novel)
    if len(novel) > int(len(a.content) * max_novel_ratio) + (1 if b.reask else 0):
        return 0.0, _soft("new_terms", novel)
    for t in novel:  # the few new words a re-ask may add must not be a number or a name
        if any(ch.isdigit() for ch in t):
            return 0.0, "new_number"
        if _named(t, b.raw):
            return 0.0, "new_entity"
    if a.pairs and b.pairs and _flipped(a.pairs, b.pairs, alias):
        return 0.0, "direction_flipped"
    return 2.0 * matched / (len(a.content) + len(b.content)), ""


def _soft(reason: str, new_terms: list[str]) -> str:
    """A "not enough overlap" verdict, unless b brings a new number (a hard block even for embeddings)."""
    return "new_number" if any(ch.isdigit() for t in new_terms for ch in t) else reason


def _named(t: str, raw: str) -> bool:
    """Whether a word with stem ``t`` is capitalised mid-sentence in ``raw`` (a name: "Germany", "MySQL")."""
    if raw[1:] == raw[1:].lower():
        return False
    for found in _RAW_WORD.finditer(raw):
        word = found.group()
        if not word[0].isupper() or word == "I" or stem(word.lower()) != t:
            continue
        j = found.start() - 1
        while j >= 0 and raw[j] in " \t\"'(":
            j -= 1
        if j >= 0 and raw[j] not in _SENTENCE_MARKS:
            return True
    return False


def _flipped(a: frozenset[tuple[str, str]], b: frozenset[tuple[str, str]], alias: dict[str, str]) -> bool:
    """True when b swaps the two sides of a's "X to Y" ("celsius to fahrenheit" vs the reverse)."""
    return any((alias.get(y, y), alias.get(x, x)) in a for x, y in b)
