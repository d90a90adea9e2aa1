"""SIMULATED chat sessions with known implicit signals: a fixture for tests and the mining-scale bench.

``ChatBuilder`` produces traces the way a chat app sends calls (every call carries the whole
conversation). ``generate_sessions`` scripts users who re-ask, regenerate, push back, paste edited
answers, say thanks, copy answers and walk away -- and who also do the look-alike things that must not
count (refinements, retries after errors, "no problem, thanks", quoting the answer). Each session
carries the ground truth: which answer trace should get which signal.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from workbench.models import Trace

from .simulated_bank import PUSHBACK, PUSHBACK_NEGATIVE, THANKS, THANKS_NEGATIVE, TOPICS, Topic

__all__ = ["SIGNALS", "ChatBuilder", "LabelledSession", "Score", "edit_text", "evaluate", "generate_sessions"]

SIGNALS = ("repeat_ask", "regenerate", "pushback", "positive", "abandon")
BASE_TIME = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class ChatBuilder:
    """Builds one session's traces; ids are ``{session_id}-{n:03d}`` so runs are reproducible."""

    def __init__(
        self,
        session_id: str,
        user_id: str | None = "u1",
        start: datetime = BASE_TIME,
        system: str | None = "You are a helpful assistant.",
    ) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.clock = start
        self.history: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        self.traces: list[Trace] = []

    def _trace(self, messages: list[dict[str, Any]], output: str | None, status: str, **extra: Any) -> Trace:
        trace = Trace(
            id=f"{self.session_id}-{len(self.traces):03d}",
            created_at=self.clock,
            session_id=self.session_id,
            user_id=self.user_id,
            model_requested="gpt-4o-mini",
            input=messages,
            output_text=output,
            status=status,  # type: ignore[arg-type]
            error_type="RateLimitError" if status == "error" else None,
            **extra,
        )
        self.traces.append(trace)
        return trace

    def ask(
        self,
        text: str,
        answer: str | None,
        *,
        after_s: float = 60.0,
        metadata: dict[str, Any] | None = None,
        status: str = "ok",
    ) -> Trace:
        """The user sends ``text``; a failed call leaves the history as it was (the app will resend)."""
        self.clock += timedelta(seconds=after_s)
        messages = [*self.history, {"role": "user", "content": text}]
        trace = self._trace(messages, answer, status, metadata=dict(metadata or {}))
        if status == "ok":
            self.history = [*messages, {"role": "assistant", "content": answer or ""}]
        return trace

    def regenerate(
        self,
        answer: str,
        *,
        after_s: float = 5.0,
        mark: bool = False,
        system: str | None = None,
    ) -> Trace:
        """Resend the last call's input (the regenerate button); ``mark`` sets metadata regenerate=True."""
        self.clock += timedelta(seconds=after_s)
        messages = [dict(m) for m in self.traces[-1].input]
        if system is not None and messages and messages[0].get("role") == "system":
            messages[0]["content"] = system
        trace = self._trace(messages, answer, "ok", metadata={"regenerate": True} if mark else {})
        self.history = [*messages, {"role": "assistant", "content": answer}]
        return trace

    def tool_turn(self, text: str, tool_result: str, answer: str, *, after_s: float = 60.0) -> list[Trace]:
        """An agent turn: one call asks for a tool, a second call (input ending in the tool result) answers."""
        self.clock += timedelta(seconds=after_s)
        messages = [*self.history, {"role": "user", "content": text}]
        call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        first = self._trace(messages, None, "ok", tool_calls=[call])
        self.clock += timedelta(seconds=2)
        messages = [
            *messages,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": tool_result},
        ]
        second = self._trace(messages, answer, "ok")
        self.history = [*messages, {"role": "assistant", "content": answer}]
        return [first, second]

    def mark(self, **metadata: Any) -> None:
        """The app reports an event on the latest answer (e.g. copied=True)."""
        self.traces[-1].metadata.update(metadata)


@dataclass
class LabelledSession:
    session_id: str
    traces: list[Trace]
    now: datetime
    labels: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    ignore: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # ambiguous, not scored
    events: list[str] = field(default_factory=list)


_WRAPPERS = (
    "I asked: {q}",
    "again, {q}",
    "Let me rephrase. {q}",
    "{q} Please answer the question.",
    "my question was {ql}",
    "can you just tell me {ql}",
    "{q}",
    "{q}",
    "{q}",
)
_GENERIC_FOLLOWUPS = (
    "Can you give me an example?",
    "Can you explain that in simpler terms?",
    "Why is that?",
    "What are the alternatives?",
    "Is there a shorter version?",
    "what about the second option?",
)
_CLOSINGS = ("thanks, that's all!", "Thank you, bye!", "ok thanks", "great, that's it for today")
_DECLINES = ("no", "No.", "nope", "no thanks")
_PREFACES = ("", "", "Here's the corrected version:\n", "Fixed it:\n", "This is the right one:\n\n", "should be:\n")
_REPLACEMENTS = ("usually", "always", "roughly", "never", "only", "mostly", "newer", "older", "smaller", "larger")
_NUMBER = re.compile(r"\d+")


def _surface(text: str, rng: random.Random) -> str:
    """How people actually type: lowercase, no question mark, doubled marks, a transposed letter."""
    if rng.random() < 0.3:
        text = text.lower()
    if rng.random() < 0.25:
        text = text.rstrip("?")
    elif rng.random() < 0.1:
        text = text.rstrip("?") + "??"
    if rng.random() < 0.15:
        words = text.split(" ")
        long_words = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
        if long_words:
            i = rng.choice(long_words)
            w = words[i]
            k = rng.randrange(1, len(w) - 2)
            words[i] = w[:k] + w[k + 1] + w[k] + w[k + 2 :]
            text = " ".join(words)
    return text


def _reask(topic: Topic, rng: random.Random) -> str:
    base = rng.choice(topic.rephrases) if rng.random() < 0.7 else topic.question
    wrapper = rng.choice(_WRAPPERS)
    lowered = base[0].lower() + base[1:]
    return _surface(wrapper.format(q=base, ql=lowered), rng)


def edit_text(answer: str, rng: random.Random) -> str:
    """A user's corrected version of an answer: a number or a word or two changed, or a note added."""
    words = answer.split(" ")
    for _ in range(rng.randint(1, 2)):
        op = rng.random()
        numbers = [i for i, w in enumerate(words) if _NUMBER.search(w)]
        if op < 0.35 and numbers:
            i = rng.choice(numbers)
            words[i] = _NUMBER.sub(lambda m: str(int(m.group()) + rng.randint(1, 9)), words[i], count=1)
        elif op < 0.8:
            i = rng.choice([i for i, w in enumerate(words) if len(w) >= 4] or [0])
            words[i] = rng.choice(_REPLACEMENTS)
        else:
            words.append(rng.choice(("Note: check the version first.", "This also needs a restart.")))
    return " ".join(words)


_ACTIONS: tuple[tuple[str, float], ...] = (
    ("new", 14),
    ("repeat", 13),
    ("repeat_late", 3),
    ("retype", 3),
    ("followup", 14),
    ("regenerate", 9),
    ("regenerate_late", 2),
    ("error_retry", 4),
    ("pushback", 9),
    ("pushback_edit", 5),
    ("pushback_negative", 8),
    ("quote", 4),
    ("thanks", 8),
    ("thanks_negative", 4),
    ("copied", 4),
    ("pause", 3),
    ("offer_decline", 3),
)
_REPEAT_WINDOW_S = 600.0  # the definition of "soon" used for the labels (RepeatAskConfig default)
_CLOSING_TEXTS = frozenset([*_CLOSINGS, *THANKS])
# Replies after which silence may or may not be leaving ("no", "no worries"): not scored for abandon.
_AMBIGUOUS_END = frozenset([*_DECLINES, *PUSHBACK_NEGATIVE, *(text for text, _ in THANKS_NEGATIVE)])


class _Script:
    """One scripted user: the builder, the labels, and which trace last asked the current topic."""

    def __init__(self, index: int, seed: int, users: int) -> None:
        self.rng = random.Random(f"{seed}:{index}")
        sid = f"s{index:04d}"
        self.b = ChatBuilder(sid, f"user{self.rng.randrange(users)}", BASE_TIME + timedelta(minutes=index * 11))
        self.ls = LabelledSession(sid, self.b.traces, BASE_TIME)
        self.topics = iter(self.rng.sample(TOPICS, 10))
        self.cur: Topic = next(self.topics)
        self.asked_at = 0  # index of the trace that last asked self.cur
        self.asked_text = ""  # the question as typed there (without any "thanks"/"that's wrong" around it)
        self.used: set[str] = set()

    def label(self, signal: str, trace: Trace) -> None:
        if signal == "abandon" and trace.input and trace.input[-1]["content"] in _AMBIGUOUS_END:
            self.ls.ignore[signal].add(trace.id)
        else:
            self.ls.labels[signal].add(trace.id)

    def new_topic(self, gap: float, prefix: str = "", suffix: str = "", status: str = "ok") -> Trace:
        self.cur = next(self.topics)
        answer = None if status == "error" else self.cur.answer + suffix
        self.asked_text = _surface(self.cur.question, self.rng)
        trace = self.b.ask(prefix + self.asked_text, answer, after_s=gap, status=status)
        self.asked_at = len(self.b.traces) - 1
        return trace

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        """A reply not used before in this session (saying the same thing twice would be a repeat)."""
        fresh = [o for o in options if o not in self.used] or list(options)
        choice = self.rng.choice(fresh)
        self.used.add(choice)
        return choice

    def can_reask(self, gap: float) -> bool:
        """A re-ask is labelled only when the asking turn is within 2 turns and 10 minutes."""
        traces = self.b.traces
        asked = traces[self.asked_at]
        recent = len(traces) - 1 - self.asked_at <= 1
        soon = (self.b.clock + timedelta(seconds=gap) - asked.created_at).total_seconds() < _REPEAT_WINDOW_S
        return recent and soon and asked.status == "ok"

    def reask(self, question: str, answer: str, gap: float, *, prefix: str = "", labelled: bool = True) -> None:
        if labelled:
            self.label("repeat_ask", self.b.traces[self.asked_at])
        self.b.ask(prefix + question, answer, after_s=gap)
        self.asked_at = len(self.b.traces) - 1
        self.asked_text = question

    def step(self, action: str) -> None:
        b, rng, cur = self.b, self.rng, self.cur
        prev = b.traces[-1]
        gap = rng.uniform(20, 300)
        if action in ("repeat", "retype") and not self.can_reask(gap):
            action = "new"
        if action == "new":
            self.new_topic(gap)
        elif action == "repeat":
            self.reask(_reask(cur, rng), "Sure. " + cur.answer, gap)
        elif action == "repeat_late":  # the same question, but long after the answer: not a repeat-ask
            self.reask(_reask(cur, rng), cur.answer, rng.uniform(900, 1700), labelled=False)
        elif action == "retype":  # the very same words typed again after the answer
            self.reask(self.asked_text, "Let me try again. " + cur.answer, gap)
        elif action == "followup":  # each follow-up once: asking one twice would be a repeat
            options = [f for f in (*cur.followups, *_GENERIC_FOLLOWUPS) if f not in self.used]
            text = rng.choice(options[:3] if rng.random() < 0.8 and options[:3] else options)
            self.used.add(text)
            b.ask(_surface(text, rng), "Good question. Here is what changes in that case.", after_s=gap)
        elif action in ("regenerate", "regenerate_late"):
            late = action == "regenerate_late"
            if late and not _closing_or_used(prev):
                self.label("abandon", prev)
            elif not late:
                self.label("regenerate", prev)
            system = "You are a helpful assistant. Time: 10:42." if rng.random() < 0.15 else None
            b.regenerate(
                "Here is another take. " + cur.answer,
                after_s=rng.uniform(2000, 5000) if late else rng.uniform(2, 90),
                mark=not late and rng.random() < 0.4,
                system=system,
            )
            if prev.id == b.traces[self.asked_at].id:
                self.asked_at = len(b.traces) - 1
        elif action == "error_retry":  # the app retries a failed call: no verdict on any answer
            self.new_topic(gap, status="error")
            b.regenerate(self.cur.answer, after_s=rng.uniform(1, 10))
            self.asked_at = len(b.traces) - 1
        elif action == "pushback":
            self.label("pushback", prev)
            text = self.pick(PUSHBACK)
            if rng.random() < 0.25 and self.can_reask(gap):
                self.reask(_reask(cur, rng), "Sorry about that. " + cur.answer, gap, prefix=text + " ")
            else:
                b.ask(text, "Sorry about that. " + cur.answer, after_s=gap)
        elif action == "pushback_edit":
            if prev.output_text != cur.answer:
                prev = self.new_topic(gap)
            self.label("pushback", prev)
            b.ask(rng.choice(_PREFACES) + edit_text(self.cur.answer, rng), "Thanks for the correction.", after_s=gap)
        elif action == "pushback_negative":
            self.ls.ignore["positive"].add(prev.id)
            b.ask(self.pick(PUSHBACK_NEGATIVE), "Happy to help with that.", after_s=gap)
        elif action == "quote":  # quoting the answer unchanged, or pasting another text, is not an edit
            other = rng.choice(TOPICS).answer
            quoted = prev.output_text if prev.output_text and len(prev.output_text) > 80 else other
            text = rng.choice(
                (
                    f"Can you explain this part?\n\n{quoted}",
                    f"Summarize this: {other}",
                    f"What do you mean by '{quoted[:30]}'?",
                )
            )
            b.ask(text, "Of course: it means the following.", after_s=gap)
        elif action == "thanks":
            self.label("positive", prev)
            text = self.pick(THANKS)
            if rng.random() < 0.4:
                self.new_topic(gap, prefix=text + " ")
            else:
                b.ask(text, "You're welcome!", after_s=gap)
        elif action == "thanks_negative":
            text = self.pick([t for t, _ in THANKS_NEGATIVE])
            is_pushback = dict(THANKS_NEGATIVE)[text]
            if is_pushback:
                self.label("pushback", prev)
            b.ask(text, "Let me look at that again.", after_s=gap)
        elif action == "copied":
            self.label("positive", prev)
            b.mark(copied=True)
        elif action == "pause":  # the user leaves and comes back much later with a new question
            if not _closing_or_used(prev):
                self.label("abandon", prev)
            self.new_topic(rng.uniform(2000, 20000))
        elif action == "offer_decline":  # a bare "no" answers the assistant's question: not a rejection
            self.new_topic(gap, suffix=" Would you like a worked example?")
            b.ask(self.pick(_DECLINES), "Alright, let me know if you need anything else.", after_s=gap)

    def finish(self) -> LabelledSession:
        b, rng, ls = self.b, self.rng, self.ls
        ending = rng.choices(("leave", "in_progress", "closing"), (6, 2, 2))[0]
        ls.events.append(ending)
        last = b.traces[-1]
        if ending == "closing":
            self.label("positive", last)
            b.ask(rng.choice(_CLOSINGS), "You're welcome, goodbye!", after_s=rng.uniform(10, 120))
            ls.now = b.clock + timedelta(hours=3)
        elif ending == "in_progress":
            ls.now = b.clock + timedelta(seconds=rng.uniform(5, 1500))
        else:
            if not _closing_or_used(last):
                self.label("abandon", last)
            ls.now = b.clock + timedelta(seconds=rng.uniform(1900, 86400))
        return ls


def _closing_or_used(trace: Trace) -> bool:
    text = trace.input[-1]["content"] if trace.input else ""
    return bool(trace.metadata.get("copied")) or text in _CLOSING_TEXTS


def _session(index: int, seed: int, users: int) -> LabelledSession:
    script = _Script(index, seed, users)
    script.asked_text = _surface(script.cur.question, script.rng)
    script.b.ask(script.asked_text, script.cur.answer, after_s=0)
    names, weights = zip(*_ACTIONS, strict=True)
    for _ in range(script.rng.randint(0, 6)):
        action = script.rng.choices(names, weights)[0]
        script.ls.events.append(action)
        script.step(action)
    return script.finish()


def generate_sessions(n: int = 400, seed: int = 20250303) -> list[LabelledSession]:
    """``n`` labelled sessions; the same (n, seed) always gives the same traces, ids and labels."""
    users = max(1, n // 3)
    return [_session(i, seed, users) for i in range(n)]


@dataclass(frozen=True, slots=True)
class Score:
    signal: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0


def evaluate(sessions: list[LabelledSession], predicted: dict[str, set[str]]) -> dict[str, Score]:
    """Precision/recall per signal of predicted (signal -> answer trace ids) against the labels."""
    scores: dict[str, Score] = {}
    for signal in SIGNALS:
        truth = set().union(*(s.labels.get(signal, set()) for s in sessions))
        ignored = set().union(*(s.ignore.get(signal, set()) for s in sessions))
        found = predicted.get(signal, set()) - ignored
        truth -= ignored
        scores[signal] = Score(signal, len(found & truth), len(found - truth), len(truth - found))
    return scores
