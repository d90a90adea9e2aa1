"""Features of a user's reply to an answer, for the learned reaction classifiers.

A *pair* is (the user's previous message, the assistant's answer to it, the user's reply, the gap in
seconds). What a reply means depends on all three: "no, JavaScript please" answers the assistant's own
question, "is 221 prime" after "is 97 prime" is a new request, "thanks" alone closes a conversation.
So the features are:

* hashed character n-grams of the reply (language-agnostic: they catch "merci", "danke", "no funciona"
  without a word list), hashed opening words of the reply, and the same opening words crossed with
  "the answer ended with a question" (so the model can learn that a "no" answering a question is not a
  rejection);
* structure: char-n-gram cosine and fuzzy ratios between reply and previous message, whether numbers or
  ids differ between them (a changed number is a new request), whether the reply quotes the answer,
  whether the answer asked a question, the reply's length, the time gap. The answer's own length is
  left out on purpose: in hand-written data, failed answers are short, which does not carry over;
* the old lexical rules, as cheap features only (the model decides how much they count).

Everything is vectorised per batch (one call per mining job, not per pair), so mining stays cheap.
``FEATURES_VERSION`` is stored with the weights; a change here without retraining is refused at load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from rapidfuzz import fuzz
from sklearn.feature_extraction.text import HashingVectorizer

from .lexicon import normalize
from .phrases import CLOSING, GRATITUDE_VETO, match_rejection, may_reject, thanks_phrase

__all__ = ["DENSE", "FEATURES_VERSION", "Pair", "dense_features", "featurize", "n_features"]

FEATURES_VERSION = 4
_CHAR_BITS, _HEAD_BITS = 15, 12

_CHAR = HashingVectorizer(
    analyzer="char_wb",
    ngram_range=(3, 3),
    n_features=2**_CHAR_BITS,
    alternate_sign=False,
    norm="l2",
    lowercase=True,
    dtype=np.float32,
)
_HEAD = HashingVectorizer(
    analyzer="word",
    ngram_range=(1, 2),
    n_features=2**_HEAD_BITS,
    token_pattern=r"(?u)\b\w+\b",
    alternate_sign=False,
    norm="l2",
    lowercase=True,
    dtype=np.float32,
)

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ID = re.compile(r"\b(?=\w*\d)\w{2,}\b")
_WORD = re.compile(r"\w+", re.UNICODE)
_TERM = re.compile(r"\w*\d\w*|\w{4,}")
_CAPITAL = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-ZÀ-Ý][\wÀ-ÿ]+")
_REFUSAL = re.compile(
    r"\b(?:i (?:can(?:no|')t|am unable|'m unable|am not able|'m not able|don't have access|do not have)|"
    r"as an ai|i'm sorry,? but|sorry,? i (?:can|don)|unable to (?:help|assist|provide))",
    re.IGNORECASE,
)

DENSE = (
    "sim_char",
    "fuzz_ratio",
    "fuzz_token_set",
    "fuzz_partial",
    "identical",
    "same_prefix",
    "numbers_changed",
    "numbers_same",
    "ids_changed",
    "names_changed",
    "answer_asks",
    "answer_asks_end",
    "answer_refusal",
    "reply_quotes_answer",
    "reply_answer_sim",
    "gap_log",
    "gap_quick",
    "gap_long",
    "reply_len_log",
    "len_ratio",
    "reply_question",
    "reply_words_log",
    "cue_reject",
    "cue_doubt",
    "cue_may_reject",
    "cue_thanks",
    "cue_thanks_start",
    "cue_veto",
    "cue_closing",
    "cue_no_start",
    "reply_terms_from_prev_not_answer",
    "prev_terms_in_answer",
    "reply_terms_in_answer",
    "reply_terms_new",
    "reply_has_contrast",
    "prev_terms_in_reply",
)
_CONTRAST = re.compile(
    r"\b(?:but|though|still|instead|actually|not|specifically|just|only|again|pero|aber|mais|ma|mas|"
    r"nicht|pas|no|non|não|ya|oui|doch|eigentlich|sondern|quiero|je veux|ich will|i want|i need|"
    r"i asked|i meant)\b",
    re.IGNORECASE,
)


def _terms(text: str) -> set[str]:
    """Content-ish words: 4+ letters, or any token with a digit, lower-cased, cut to 6 characters (a cheap
    stem that works across the languages in scope)."""
    return {w[:6] for w in _TERM.findall(text.lower())}


@dataclass(frozen=True, slots=True)
class Pair:
    """A reply (``reply``) to an answer (``answer``) of the user's previous message (``prev``)."""

    prev: str
    answer: str
    reply: str
    gap_s: float


def n_features() -> int:
    return 2**_CHAR_BITS + 2 * 2**_HEAD_BITS + len(DENSE)


def _head(text: str, words: int = 6) -> str:
    return " ".join(_WORD.findall(text)[:words])


def _numbers(text: str) -> set[str]:
    return set(_NUMBER.findall(text))


def _names(text: str) -> set[str]:
    return {m.lower() for m in _CAPITAL.findall(text)}


def _ends_with_question(answer: str) -> bool:
    tail = answer.rstrip()[-300:]
    return tail.endswith("?") or tail.endswith("?)") or tail.endswith("?*")


def dense_features(pairs: Sequence[Pair]) -> np.ndarray:
    """The structural and cue features, one row per pair."""
    out = np.zeros((len(pairs), len(DENSE)), dtype=np.float32)
    for row, p in enumerate(pairs):
        prev, reply, answer = p.prev, p.reply, p.answer
        norm = normalize(reply)
        prev_norm = normalize(prev)
        asks_end = _ends_with_question(answer)
        n_prev, n_reply = _numbers(prev), _numbers(reply)
        i_prev, i_reply = set(_ID.findall(prev)), set(_ID.findall(reply))
        c_prev, c_reply = _names(prev), _names(reply)
        rejection = match_rejection(norm, asks_end) if norm else None
        thanks = thanks_phrase(norm[:300]) if norm else None
        gap = max(0.0, p.gap_s)
        overlaps = _overlaps(prev, answer, reply)
        out[row] = (
            fuzz.QRatio(prev_norm, norm) / 100.0,
            fuzz.ratio(prev_norm, norm) / 100.0,
            fuzz.token_set_ratio(prev_norm, norm) / 100.0,
            fuzz.partial_ratio(prev_norm, norm) / 100.0 if norm and prev_norm else 0.0,
            float(bool(norm) and norm == prev_norm),
            float(bool(norm) and norm[:20] == prev_norm[:20]),
            float(bool(n_prev) and bool(n_reply) and n_prev != n_reply),
            float(bool(n_prev) and n_prev == n_reply),
            float(bool(i_prev) and bool(i_reply) and i_prev != i_reply),
            float(bool(c_prev) and bool(c_reply - c_prev)),
            float("?" in answer),
            float(asks_end),
            float(bool(_REFUSAL.search(answer[:400]))),
            float(len(reply) > 40 and overlaps[2] > 0.8),
            overlaps[2],
            math.log1p(gap) / 10.0,
            float(gap <= 20.0),
            float(gap >= 1800.0),
            math.log1p(len(reply)) / 8.0,
            min(4.0, (len(reply) + 1) / (len(prev) + 1)) / 4.0,
            float(reply.rstrip().endswith("?")),
            math.log1p(len(_WORD.findall(reply))) / 5.0,
            float(rejection is not None and rejection[0] == "rejection"),
            float(rejection is not None and rejection[0] != "rejection"),
            float(may_reject(norm)) if norm else 0.0,
            float(thanks is not None),
            float(thanks is not None and norm.startswith(thanks)),
            float(bool(GRATITUDE_VETO.search(norm[:300]))),
            float(CLOSING.match(norm) is not None),
            float(norm.startswith(("no ", "no,", "nope", "no.", "nah"))),
            *overlaps,
        )
    return out


def _overlaps(prev: str, answer: str, reply: str) -> tuple[float, ...]:
    """How the reply's words sit between the question and the answer: words the user repeats from the
    question that the answer never used suggest the answer missed them (a re-ask)."""
    t_prev, t_answer, t_reply = _terms(prev), _terms(answer[:1200]), _terms(reply)
    n_reply, n_prev = max(1, len(t_reply)), max(1, len(t_prev))
    return (
        len((t_reply & t_prev) - t_answer) / n_reply,
        len(t_prev & t_answer) / n_prev,
        len(t_reply & t_answer) / n_reply,
        len(t_reply - t_prev - t_answer) / n_reply,
        float(bool(_CONTRAST.search(reply))),
        len(t_prev & t_reply) / n_prev,
    )


def featurize(pairs: Sequence[Pair], max_chars: int = 2000) -> sp.csr_matrix:
    """One sparse row per pair: [char n-grams | opening words | opening words x answer asked | dense]."""
    if not pairs:
        return sp.csr_matrix((0, n_features()), dtype=np.float32)
    replies = [p.reply[:max_chars] for p in pairs]
    answers = [p.answer[:max_chars] for p in pairs]
    chars = _CHAR.transform(replies)
    heads = _HEAD.transform([_head(r) for r in replies])
    asks = np.array([_ends_with_question(a) for a in answers], dtype=np.float32)
    crossed = sp.diags(asks).dot(heads)
    dense = sp.csr_matrix(dense_features(pairs))
    return sp.hstack([chars, heads, crossed, dense], format="csr", dtype=np.float32)
