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
* the old lexical rules, as cheap features only (the model decides how much they count), and (v6) words
  that reject an answer in the data's other languages: without them the model ranked non-English pushback
  as well as English but scored it lower, so one threshold found a third as many.

Everything is vectorised per batch (one call per mining job, not per pair), so mining stays cheap.
``FEATURES_VERSION`` is stored with the weights; a change here without retraining is refused at load.
"""

from __future__ import annotations

import itertools
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

FEATURES_VERSION = 6
_CHAR_BITS, _HEAD_BITS = 15, 12


def _char_wb3(text: str) -> list[str]:
    """The character 3-grams of each word padded with a space (what sklearn's ``char_wb`` analyzer gives for
    lower-cased text, in one pass: the 3-grams of the space-joined words whose middle is not a space)."""
    t = " " + " ".join(text.lower().split()) + " "
    return [t[i : i + 3] for i in range(len(t) - 2) if t[i + 1] != " "]


_CHAR = HashingVectorizer(
    analyzer=_char_wb3,
    n_features=2**_CHAR_BITS,
    alternate_sign=False,
    norm="l2",
    dtype=np.float32,
)


def _word_12(words: Sequence[str]) -> list[str]:
    """Words and word pairs of an already tokenised, lower-cased text (sklearn's word 1-2 grams)."""
    return [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]


_HEAD = HashingVectorizer(  # input: a reply's first words (from ``_Facts.words``)
    analyzer=_word_12,
    n_features=2**_HEAD_BITS,
    alternate_sign=False,
    norm="l2",
    dtype=np.float32,
)

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"\w+", re.UNICODE)
_CAPITAL = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-ZÀ-Ý][\wÀ-ÿ]+")
# An answer that declines: the English phrasings of the ``answer_refusal`` feature...
_DECLINES_EN = (
    r"i (?:can(?:no|')t|am unable|'m unable|am not able|'m not able|don't have access|do not have)|"
    r"as an ai|i'm sorry,? but|sorry,? i (?:can|don)|unable to (?:help|assist|provide)"
)
_REFUSAL = re.compile(rf"\b(?:{_DECLINES_EN})", re.IGNORECASE)
# ...and, as evidence that a last answer failed (abandonment), any answer that declines, says it does not know
# or sends the user elsewhere, in the languages our users write: a failed answer is a failure whatever the
# language. Written from common phrasings, not from the labelled sessions. Matched on lower-cased text as one
# flat alternation (IGNORECASE and nested groups each with its own \b made it 10x slower than _REFUSAL).
_DECLINES = re.compile(
    rf"\b(?:{_DECLINES_EN}|"
    r"i(?: do not|'m not| don't) know|i'm afraid i (?:can|don)|"
    r"(?:please )?contact (?:our |the )?(?:support|customer service)|beyond (?:my|the) scope|"
    r"ich kann (?:(?:ihnen|dir|da|hier|hierzu|dazu) )?(?:leider )?(?:nicht|keine)|leider kann ich|"
    r"kann ich (?:leider )?nicht|ich weiß (?:es )?nicht|wenden sie sich an|"
    r"je ne (?:peux|suis pas en mesure|sais pas)|je n'ai pas accès|désolée?,? (?:mais )?je ne|"
    r"(?:veuillez )?contacte[zr] (?:le|notre) (?:support|service)|"
    r"no (?:puedo|sé|tengo acceso|estoy en condiciones)|lo siento,? (?:pero )?no|(?:contacte|póngase en contacto) con|"
    r"não (?:posso|consigo|sei|tenho acesso)|desculpe,? (?:mas )?não|entre em contato|"
    r"non (?:posso|sono in grado|so |ho accesso)|mi dispiace,? (?:ma )?non|contatta(?:re)? (?:il|l'assistenza)|"
    r"ik kan (?:(?:je|u) )?(?:helaas )?(?:niet|geen)|helaas kan ik|ik weet het niet|neem contact op|"
    r"nie (?:mogę|jestem w stanie|wiem)|przepraszam,? (?:ale )?nie|skontaktuj się|"
    r"не могу|не в состоянии|не знаю|извините,? (?:но )?я не|обратитесь)"
)
_DECLINES_CJK = re.compile(  # no word boundaries in Japanese and Chinese text; only searched where such text is
    r"(?:お答え|お手伝い|対応|回答)(?:でき|いたし)(?:ません|かねます)|わかりかねます|(?:私には)?(?:わかり|分かり)ません|"
    r"お問い合わせください|我(?:无法|不能|不知道|没办法)|抱歉，我|请联系"
)


def non_answer(answer: str) -> bool:
    """The answer declines, says it does not know or sends the user elsewhere (its first 400 characters)."""
    text = answer[:400].lower().replace("\u2019", "'")
    if _DECLINES.search(text):
        return True
    return bool(text) and max(text) >= "\u3000" and _DECLINES_CJK.search(text) is not None


_END_MARK = ".!?…。！？:;)]}\"'`*»”’>|"


def unterminated(answer: str) -> bool:
    """An answer that stops mid-sentence (no closing mark after its last word): truncated or garbled."""
    text = answer.rstrip()
    return len(text) >= 12 and " " in text and text[-1] not in _END_MARK and not text.endswith("```")


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
    "cue_self_correction",
    "cue_outcome",
    "cue_sarcasm",
    "answer_has_number",
    "quantity_unanswered",
    "cue_reject_other",
)


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Cue words and word pairs, matched against a text's lower-cased words (set lookups, no regex scan): a
# contrast ("but", "still", "i meant"), the user correcting their own message ("sorry, i meant floats"),
# a reported outcome ("still the same error", "tried that"), praise words that read as sarcasm next to a
# contrast or a question ("wow, so informative. the vote?"), a question after a quantity ("how much").
_CONTRAST_WORDS = _set(
    "but though still instead actually not specifically just only again pero aber mais ma mas nicht pas no non "
    "não ya oui doch eigentlich sondern quiero"
)
_CONTRAST_PAIRS = frozenset(
    {("je", "veux"), ("ich", "will"), ("i", "want"), ("i", "need"), ("i", "asked"), ("i", "meant")}
)
_SELF_WORDS = _set(
    "sorry typo oops wait scusa scusami intendevo perdón perdon pardon désolé désolée desole entschuldigung "
    "meinte desculpa desculpe bedoelde sorry"
)
_SELF_PAIRS = frozenset(
    {
        ("i", "meant"),
        ("my", "bad"),
        ("quise", "decir"),
        ("quería", "decir"),
        ("queria", "decir"),
        ("voulais", "dire"),
        ("quis", "dizer"),
        ("i", "mean"),
    }
)
_OUTCOME_WORDS = _set("still tried followed sigue todavía todavia toujours ancora ainda again")
_OUTCOME_TEXT = (
    "didn't work",
    "doesn't work",
    "does not work",
    "did not work",
    "not working",
    "did that",
    "did all",
    "same error",
    "same thing",
    "same message",
    "same problem",
    "same result",
    "immer noch",
    "nog steeds",
    "funktioniert nicht",
    "no funciona",
    "ne marche pas",
    "ne fonctionne pas",
    "non funziona",
    "não funciona",
    "nao funciona",
    "werkt niet",
    "geht nicht",
)
# The reply says the answer is wrong, did not work or was not what was asked, in the other languages our users
# write (the rejection patterns in phrases.py are English). Words and word pairs; Japanese and Chinese as text.
# Written from common phrasings, not from the labelled sessions.
_REJECT_WORDS = _set(
    "falsch faux fausse erroné erronée incorrecto incorrecta errado errada errónea erróneo sbagliato sbagliata "
    "errata errato fout onjuist verkeerd nieprawda błędnie źle неправильно неверно неправда"
)
_REJECT_PAIRS = frozenset(
    {
        ("stimmt", "nicht"),
        ("nicht", "richtig"),
        ("nicht", "gefragt"),
        ("nicht", "gemeint"),
        ("pas", "ça"),
        ("pas", "demandé"),
        ("pas", "correct"),
        ("est", "mal"),
        ("eso", "no"),
        ("no", "es"),
        ("no", "pregunté"),
        ("no", "pedí"),
        ("não", "é"),
        ("não", "perguntei"),
        ("não", "pedi"),
        ("está", "mal"),
        ("está", "errado"),
        ("non", "è"),
        ("non", "ho"),
        ("klopt", "niet"),
        ("niet", "wat"),
        ("vroeg", "niet"),
        ("nie", "to"),
        ("nie", "o"),
        ("nie", "tak"),
        ("не", "то"),
        ("не", "так"),
        ("не", "об"),
        ("не", "работает"),
    }
)
_REJECT_TEXT = (
    "違う",
    "違います",
    "間違",
    "そうじゃな",
    "動かない",
    "動きません",
    "不对",
    "错了",
    "不是",
    "没用",
    "不行",
)
_SARCASM_WORDS = _set("wow great super genial toll bravo informative hilfreich helpful útil utile")
_QUANTITY_WORDS = _set(
    "cuánto cuanto cuánta cuanta cuántos cuantos cuántas cuantas combien quanto quanta quanti quante quantos "
    "quantas hoeveel"
)
_QUANTITY_PAIRS = frozenset(
    {("how", w) for w in ("much", "many", "long", "old", "far", "big", "often")}
    | {("wie", w) for w in ("viel", "viele", "lange", "alt", "weit", "oft")}
)


@dataclass(slots=True)
class _Facts:
    """What the features read from one text, computed once per distinct text in a batch (in a session,
    a reply is also the next pair's previous message)."""

    norm: str
    words: list[str]  # lower-cased \w+ runs
    word_set: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    numbers: frozenset[str]
    ids: frozenset[str]
    names: frozenset[str]
    terms: frozenset[str]


def _facts(text: str, norm: str | None, cache: dict[str, _Facts]) -> _Facts:
    found = cache.get(text)
    if found is not None:
        return found
    lower = text.lower()
    words = _WORD.findall(lower)
    digits = _DIGIT.search(text) is not None
    with_digit = [w for w in words if not w.isalpha() and any(c.isdecimal() for c in w)] if digits else []
    found = cache[text] = _Facts(
        norm=normalize(text) if norm is None else norm,
        words=words,
        word_set=frozenset(words),
        bigrams=frozenset(itertools.pairwise(words)),
        numbers=frozenset(_NUMBER.findall(text)) if digits else frozenset(),
        ids=frozenset(w for w in with_digit if len(w) >= 2),
        names=frozenset(m.lower() for m in _CAPITAL.findall(text)) if text != lower else frozenset(),
        # content-ish words: 4+ letters or any token with a digit, cut to 6 characters (a cheap stem that
        # works across the languages in scope)
        terms=frozenset(w[:6] for w in words if len(w) >= 4) | frozenset(w[:6] for w in with_digit),
    )
    return found


def _terms(text: str) -> frozenset[str]:
    """``_Facts.terms`` alone (for an answer, whose other facts are not needed)."""
    words = _WORD.findall(text.lower())
    return frozenset(w[:6] for w in words if len(w) >= 4 or (not w.isalpha() and any(c.isdecimal() for c in w)))


@dataclass(frozen=True, slots=True)
class Pair:
    """A reply (``reply``) to an answer (``answer``) of the user's previous message (``prev``).

    ``prev_norm``/``reply_norm``: the texts' ``lexicon.normalize`` form when the caller has it already
    (the session view does), else computed here."""

    prev: str
    answer: str
    reply: str
    gap_s: float
    prev_norm: str | None = None
    reply_norm: str | None = None


def n_features() -> int:
    return 2**_CHAR_BITS + 2 * 2**_HEAD_BITS + len(DENSE)


def _head(text: str, words: int = 6) -> str:
    return " ".join(_WORD.findall(text)[:words])


def _names(text: str) -> set[str]:
    return {m.lower() for m in _CAPITAL.findall(text)}


def _ends_with_question(answer: str) -> bool:
    tail = answer.rstrip()[-300:]
    return tail.endswith("?") or tail.endswith("?)") or tail.endswith("?*")


def _cue(facts: _Facts, words: frozenset[str], pairs: frozenset[tuple[str, str]]) -> bool:
    return not words.isdisjoint(facts.word_set) or not pairs.isdisjoint(facts.bigrams)


def dense_features(pairs: Sequence[Pair], cache: dict[str, _Facts] | None = None) -> np.ndarray:
    """The structural and cue features, one row per pair."""
    out = np.zeros((len(pairs), len(DENSE)), dtype=np.float32)
    cache = {} if cache is None else cache
    for row, p in enumerate(pairs):
        prev, reply, answer = p.prev, p.reply, p.answer
        f_prev, f_reply = _facts(prev, p.prev_norm, cache), _facts(reply, p.reply_norm, cache)
        norm, prev_norm = f_reply.norm, f_prev.norm
        asks_end = _ends_with_question(answer)
        n_prev, n_reply = f_prev.numbers, f_reply.numbers
        i_prev, i_reply = f_prev.ids, f_reply.ids
        c_prev, c_reply = f_prev.names, f_reply.names
        may = may_reject(norm) if norm else False
        rejection = match_rejection(norm, asks_end) if norm and (may or len(norm) < 40) else None
        thanks = thanks_phrase(norm[:300]) if norm else None
        gap = max(0.0, p.gap_s)
        overlaps = _overlaps(f_prev, answer, f_reply)
        contrast = bool(overlaps[4])
        answer_number = _DIGIT.search(answer) is not None
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
            math.log1p(len(f_reply.words)) / 5.0,
            float(rejection is not None and rejection[0] == "rejection"),
            float(rejection is not None and rejection[0] != "rejection"),
            float(may),
            float(thanks is not None),
            float(thanks is not None and norm.startswith(thanks)),
            float(bool(GRATITUDE_VETO.search(norm[:300]))),
            float(CLOSING.match(norm) is not None),
            float(norm.startswith(("no ", "no,", "nope", "no.", "nah"))),
            *overlaps,
            float(_cue(f_reply, _SELF_WORDS, _SELF_PAIRS)),
            float(_cue(f_reply, _OUTCOME_WORDS, frozenset()) or any(t in norm for t in _OUTCOME_TEXT)),
            float((contrast or "?" in reply) and not _SARCASM_WORDS.isdisjoint(f_reply.word_set)),
            float(answer_number),
            float(not answer_number and _cue(f_prev, _QUANTITY_WORDS, _QUANTITY_PAIRS)),
            float(_cue(f_reply, _REJECT_WORDS, _REJECT_PAIRS) or any(t in norm for t in _REJECT_TEXT)),
        )
    return out


def _overlaps(prev: _Facts, answer: str, reply: _Facts) -> tuple[float, ...]:
    """How the reply's words sit between the question and the answer: words the user repeats from the
    question that the answer never used suggest the answer missed them (a re-ask)."""
    t_prev, t_reply = prev.terms, reply.terms
    t_answer = _terms(answer[:1200])
    n_reply, n_prev = max(1, len(t_reply)), max(1, len(t_prev))
    return (
        len((t_reply & t_prev) - t_answer) / n_reply,
        len(t_prev & t_answer) / n_prev,
        len(t_reply & t_answer) / n_reply,
        len(t_reply - t_prev - t_answer) / n_reply,
        float(_cue(reply, _CONTRAST_WORDS, _CONTRAST_PAIRS)),
        len(t_prev & t_reply) / n_prev,
    )


def featurize(pairs: Sequence[Pair], max_chars: int = 2000) -> sp.csr_matrix:
    """One sparse row per pair: [char n-grams | opening words | opening words x answer asked | dense]."""
    if not pairs:
        return sp.csr_matrix((0, n_features()), dtype=np.float32)
    cache: dict[str, _Facts] = {}
    dense = sp.csr_matrix(dense_features(pairs, cache))
    replies = [p.reply[:max_chars] for p in pairs]
    chars = _CHAR.transform(replies)
    heads = _HEAD.transform([cache[p.reply].words[:6] for p in pairs])
    asks = np.array([_ends_with_question(p.answer[:max_chars]) for p in pairs], dtype=np.float32)
    crossed = sp.diags(asks).dot(heads)
    return sp.hstack([chars, heads, crossed, dense], format="csr", dtype=np.float32)
