"""Reply phrases: rejections and doubts (pushback), gratitude (positive), closings (not abandonment).

Rejections are anchored to what a rejection looks like -- a subject that points at the answer ("that",
"it", "your code") followed by a verdict, or a reply that *starts* with "no"/"nope" and goes on to
correct -- because the words alone ("wrong", "doesn't work", "no") are everywhere in ordinary
questions ("what's wrong with my code?", "no problem, thanks", "why doesn't my loop work?"). All
patterns expect ``lexicon.normalize``d text (lowercase, straight quotes) and are compiled once.
"""

from __future__ import annotations

import re

__all__ = [
    "CLOSING",
    "GRATITUDE_VETO",
    "match_rejection",
    "may_reject",
    "strip_rejections",
    "thanks_phrase",
    "word_search",
    "word_sub",
]

_SUBJECT = (
    r"(?:(?:that|this|your) (?:answer|response|reply|code|solution|suggestion|fix|example|explanation|"
    r"script|query|command|function|math|calculation|formula|translation|summary|output|result|"
    r"information|info|advice)|that|this|it)"
)
_NEG = r"(?:doesn't|does not|didn't|did not|won't|will not|isn't|is not|wasn't|can't|cannot|still doesn't)"
# Unanchored rejections. No pattern starts with \b: that would switch off the regex engine's first-character
# scan and cost ~10 us per reply; word starts are checked in Python instead (``_word_search``).
_REJECT = [
    rf"{_SUBJECT}(?:'s| is| was|'re| are)\s+(?:(?:just|still|completely|totally|all|simply|clearly|"
    r"obviously|actually|also|definitely|plain|so|quite|partly|partially|absolutely|again)\s+)?"
    r"(?:wrong|incorrect|false|inaccurate|untrue|outdated|broken|nonsense|made up|a hallucination|"
    r"not (?:quite )?(?:right|correct|true|accurate|working|it|the case|helpful|what i (?:asked|meant|"
    r"wanted|want|need|needed|was (?:asking|looking) for)))\b(?! (?:to|with|about|if|when|for me to)\b)",
    rf"{_SUBJECT}\s+(?:still\s+|just\s+|also\s+)?{_NEG}\s+(?:even\s+|really\s+)?(?:work|compile|run|"
    r"help|answer|make (?:any )?sense|solve|fix|build|load|exist|return)\w*",
    r"you(?:'re| are| were)\s+(?:still\s+|just\s+|completely\s+|totally\s+)?(?:wrong|mistaken|incorrect|"
    r"confused|hallucinating|making (?:this|that|it|things) up)\b",
    r"you (?:got|have|get|are getting) (?:it|that|this|the \w+) wrong\b",
    r"you (?:misunderstood|misread|confused|mixed up|conflated)\b",
    r"you made (?:a|an) (?:mistake|error|typo)\b",
    r"you (?:didn't|did not) (?:answer|understand|read)\b",
    r"you (?:missed|ignored|forgot) (?:the|my|that|what|to)\b",
    r"you keep (?:giving|saying|making|repeating)\b",
    r"not what i (?:asked|meant|wanted|want|need|needed|was asking|was looking for|said)\b",
    r"i (?:didn't|did not|never) (?:ask|say|said|asked)\b",
    r"read (?:my|the) question\b",
    r"i (?:said|asked for|asked about|wanted|meant|need) [^.?!]{1,60}?,? not\b",
    r"(?:wrong answer|wrong again|still (?:wrong|broken|failing|not working|doesn't work|does not work|"
    r"incorrect)|same (?:error|problem|issue) (?:again|as before)|still (?:get|getting|see|seeing) "
    r"(?:the same|an|a|that) (?:error|exception|problem))\b",
    r"(?:(?:when|if) i (?:run|ran|try|tried|use|used|execute|executed|compile|paste|pasted|apply|applied)|"
    r"i (?:tried|ran|used|tested|followed|applied|executed)) (?:it|that|this|your \w+|the code|these steps|"
    r"the steps)\b.{0,60}(?:error|exception|\b(?:fails|failed|crash\w*|doesn't|does not|didn't|did not|"
    r"wrong|nothing happens))\b",
    r"(?:the|that|this) (?:\w+ )?(?:part|step|line|number|date|result|bit|formula|value|example|command|"
    r"sentence|paragraph|section|figure|name|year)s? (?:is|was|are|were) (?:still |also |just |clearly )?"
    r"(?:wrong|incorrect|false|not (?:right|correct|true))\b",
    r"thanks? for nothing\b",
    r"that can't be (?:right|true|correct)\b",
    r"i don't think (?:that's|that is|this is|it's|it is) (?:right|correct|true|accurate)\b",
    r"(?:there is no|there's no|there isn't (?:a|any)) such\b",
    r"(?:doesn't|does not) (?:even )?exist\b",
    r"the (?:correct|right|actual) (?:answer|result|value|output|version|number|date|year) (?:is|was|"
    r"should be)\b",
]
# Rejections that only count at the start of the reply (used with .match, so they cost nothing elsewhere).
_REJECT_START = [
    r"(?:sorry,? )?(?:i meant|i mean(?! it)|what i meant (?:was|is)|i was asking (?:about|for))\b",
    r"(?:actually|in fact)\b.{0,120}\b(?:not|wrong|incorrect)\b",
    r"(?:it|that|this|the (?:answer|result|output|value|sum|total|date|year))\s+(?:should|must|has to|"
    r"needs to) (?:be|have been|return|say|print|output)\b[^?]*$",
    r"(?:no|nope|nah|wrong|incorrect|not quite|not really|not exactly|uh,? no|hmm,? no)\b[,.!:;\s-]*"
    r"(?:that's not|that is not|it's not|it is not|it isn't|that isn't|this is not|this isn't|not what|"
    r"wrong|incorrect|it should|that should|should be|it's actually|actually|the (?:answer|correct|right|"
    r"result|output)|you|i (?:meant|mean|said|asked|wanted|need|was asking)|it's \S+,? not|"
    r"(?:please )?(?:check|try|look) (?:it )?again)",
    r"(?:wrong|incorrect|nope)[.!]+(?:\s|$)",
]
_BARE = r"(?:no|nope|nah|wrong|incorrect|false|not correct|not right|not quite|try again)[.!]*$"
_DOUBT = (
    r"(?:are you (?:sure|certain)|is (?:that|this|it) (?:really )?(?:right|correct|true|accurate)\?|"
    r"really\?|hmm,? (?:are you sure|really)|i doubt)"
)
_NO_VETO = (
    r"(?:no|nope|nah)\b[,.!\s]*(?:problem|worries|thanks|thank you|need|more|further|other|"
    r"it's (?:fine|ok|okay|all good|good|perfect|alright|not (?:a problem|necessary|needed|urgent|important))|"
    r"that's (?:all|it|fine|great|perfect|ok|okay|good|enough|everything|not (?:necessary|needed|a problem|"
    r"urgent|important))|i'm (?:good|fine|ok|okay|all set|done)|that'll do|all good|you're (?:right|correct)|"
    r"that (?:works|helps|helped)|worries)"
)
_REJECT_RE = re.compile("|".join(f"(?:{p})" for p in _REJECT))
_REJECT_START_RE = re.compile("|".join(f"(?:{p})" for p in _REJECT_START))
_BARE_RE = re.compile(_BARE)
_DOUBT_RE = re.compile(_DOUBT)
_NO_VETO_RE = re.compile(_NO_VETO)
# A verdict inside a condition or a denial is not a verdict: "if it doesn't work", "I don't think that's wrong".
_HEDGE_RE = re.compile(
    r"(?:\b(?:if|when|unless|whether|in case|don't think|do not think|not saying|wouldn't say|"
    r"not sure if|wonder if|wondering if|asking if|ask if|what if)\s+(?:\w+\s+)?)$"
)
# Quoted text is mentioned, not said: 'How do you say "that's wrong" in Spanish?'
_QUOTED_RE = re.compile(r'"[^"]{0,200}"|(?:(?<=\s)|^)\'[^\n]{1,80}?\'(?=[\s.,!?;:)]|$)')


def _word_start(text: str, i: int) -> bool:
    return i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "'")


def word_search(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """``pattern.search`` restricted to matches that start a word (a fast stand-in for a leading \\b)."""
    found = pattern.search(text)
    while found is not None and not _word_start(text, found.start()):
        found = pattern.search(text, found.start() + 1)
    return found


def word_sub(pattern: re.Pattern[str], text: str) -> str:
    """``pattern.sub(" ", text)`` for matches that start a word."""
    return pattern.sub(lambda m: " " if _word_start(text, m.start()) else m.group(), text)


def match_rejection(norm: str, answer_asks: bool = False) -> tuple[str, str] | None:
    """("rejection" | "doubt", matched text) for a normalised reply, or None.

    ``answer_asks``: the answer ended with a question, so a bare "no" answers it rather than rejects.
    """
    text = _QUOTED_RE.sub(" ", norm) if '"' in norm or " '" in norm or norm.startswith("'") else norm
    text = text[:600]
    for found in _REJECT_RE.finditer(text):
        start = found.start()
        if _word_start(text, start) and not _HEDGE_RE.search(text[max(0, start - 30) : start]):
            return "rejection", found.group()
    if not _NO_VETO_RE.match(text):
        found = _REJECT_START_RE.match(text)
        if found:
            return "rejection", found.group()
        if not answer_asks:
            found = _BARE_RE.match(text)
            if found:
                return "rejection", found.group()
    found = _DOUBT_RE.match(text)
    if found:
        return "doubt", found.group()
    return None


def may_reject(norm: str) -> bool:
    """Cheap pre-check: False means no part of the text contains a rejection or doubt phrase."""
    return bool(word_search(_REJECT_RE, norm) or _REJECT_START_RE.match(norm) or _DOUBT_RE.match(norm))


def strip_rejections(sentence: str) -> str:
    """The sentence with rejection phrases cut out ("not what I asked for how do I X" -> "for how do I X")."""
    found = _REJECT_START_RE.match(sentence) or _DOUBT_RE.match(sentence)
    if found:
        sentence = " " + sentence[found.end() :]
    return word_sub(_REJECT_RE, sentence)


_GRATITUDE_START = re.compile(
    r"(?:thanks?|thank you|thx|ty|tysm|cheers|much appreciated|appreciate it|great|perfect|awesome|"
    r"excellent|amazing|brilliant|fantastic|wonderful|nice|cool|exactly(?! (?:how|what|why|when|where|which|who)\b)|"
    r"spot on|love it|lovely|"
    r"that (?:works|worked|helps|helped|did it|did the trick|was (?:helpful|perfect|great|it))|"
    r"this (?:works|worked|helps|helped|is (?:great|perfect|exactly|helpful))|it works|it worked|"
    r"works (?:now|perfectly|great|like a charm)|got it|makes sense|that makes sense|"
    r"you'?re (?:awesome|the best|a lifesaver)|ok(?:ay)?[,!.]? (?:thanks?|thank you|great|perfect|got it))\b"
    r"(?! question\b)"
)
_GRATITUDE_ANY = re.compile(
    r"(?:thanks|thank you|thx|ty|much appreciated)(?: (?:so|very) much| a lot| a ton| again|"
    r" for (?:the|your|this|that|all) \w+)?\s*(?:[!.,;]|$)"
)


def thanks_phrase(norm: str) -> str | None:
    """The grateful phrase a reply opens with or says as a sentence ("..., thank you!"), or None."""
    found = _GRATITUDE_START.match(norm) or word_search(_GRATITUDE_ANY, norm)
    return found.group().strip() if found else None


GRATITUDE_VETO = re.compile(
    r"^(?:no|not|nope)\b|thanks? for nothing|^\W*\w+(?: you)?[,!.]*\s+but\b|(?:thanks?|thank you),? but\b"
)
CLOSING = re.compile(
    r"^(?:thanks?|thank you|thx|ty|cheers|bye|goodbye|see you|that'?s all|that is all|that'?s it|"
    r"ok(?:ay)?|great|perfect|awesome|got it|cool|nice|all good|no(?:pe)?,? that'?s (?:all|it|everything)|"
    r"no (?:more )?questions?|i'?m (?:good|done|all set))\b"
)
