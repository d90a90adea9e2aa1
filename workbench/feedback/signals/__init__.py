"""Implicit-signal detectors: pure functions from one session's traces to findings.

    findings = detect(session_traces, SignalConfig(), now=datetime.now(UTC))
    findings = detect_batch(many_sessions, SignalConfig(detector="embedding"), now)   # one model call

``SignalConfig.detector`` picks the family that judges replies and abandonment: ``learned`` (default;
logistic regressions shipped in the package, no network, no extra), ``embedding`` (the same with
MiniLM sentence embeddings; the ``embeddings`` extra), ``llm`` (a reaction judge over an
OpenAI-compatible endpoint, see ``llm.py``) or ``lexical`` (the old word-list rules, kept as a
baseline). Regeneration (an identical request resent) is the same rule in every family.
``rows = [f.to_feedback() for f in findings]`` is what the miner stores (idempotency_key is unique).

Detectors never do I/O. ``now`` decides abandonment of the last answer (None: undecided). Pass the
traces of one session (any order; they are sorted by created_at). Objects only need the attributes of
``TraceLike``, so the miner may pass light row objects instead of ``Trace`` models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import SignalConfig
from . import abandon, positive, pushback, reactions, regenerate, repeat_ask
from .base import DetectorInfo, Finding, SessionView, TraceLike, timestamp
from .embeddings import Encoder, embeddings_available, load_encoder

__all__ = [
    "DETECTORS",
    "FAMILIES",
    "Detector",
    "DetectorInfo",
    "Encoder",
    "Finding",
    "SessionView",
    "TraceLike",
    "detect",
    "detect_batch",
    "detect_many",
    "detector_sources",
    "family",
    "embeddings_available",
    "load_encoder",
]


@dataclass(frozen=True, slots=True)
class Detector:
    info: DetectorInfo
    run: Callable[[SessionView], list[Finding]]


_REGENERATE = Detector(regenerate.INFO, regenerate.detect_regenerate)
_LEXICAL = (
    Detector(repeat_ask.INFO, repeat_ask.detect_repeat_ask),
    Detector(pushback.INFO, pushback.detect_pushback),
    Detector(positive.INFO, positive.detect_positive),
    Detector(abandon.INFO, abandon.detect_abandon),
)
FAMILIES: dict[str, dict[str, Detector]] = {
    "lexical": {d.info.signal: d for d in (_REGENERATE, *_LEXICAL)},
    **{
        family: {
            "regenerate": _REGENERATE,
            **{info.signal: Detector(info, run) for info, run in reactions.family_detectors(family)},
        }
        for family in ("learned", "embedding", "llm")
    },
}
# Every detector of every family by name (``name@version`` is what a mining run records).
DETECTORS: dict[str, Detector] = {d.info.name: d for family in FAMILIES.values() for d in family.values()}
_DEFAULT = SignalConfig()


def family(config: SignalConfig) -> dict[str, Detector]:
    """signal -> detector of the configured family."""
    return FAMILIES[config.detector]


def detector_sources(config: SignalConfig | None = None) -> list[str]:
    """``name@version`` of every enabled detector (what a mining run records it ran)."""
    config = config or _DEFAULT
    return [d.info.source for signal, d in family(config).items() if getattr(config, signal).enabled]


def detect(
    session: Sequence[TraceLike],
    config: SignalConfig | None = None,
    now: datetime | None = None,
    *,
    encoder: Encoder | None = None,
    judge: Any = None,
) -> list[Finding]:
    """All findings of the enabled detectors for one session's traces.

    ``encoder``: the sentence encoder for ``detector="embedding"`` (or the lexical family's
    ``repeat_ask.use_embeddings``); loaded from the extra when not given (ConfigError if missing).
    ``judge``: the reaction judge for ``detector="llm"`` (see ``llm.ReactionJudge``).
    """
    if not session:
        return []
    return detect_batch([session], config, now, encoder=encoder, judge=judge)


def detect_batch(
    sessions: Sequence[Sequence[TraceLike]],
    config: SignalConfig | None = None,
    now: datetime | None = None,
    *,
    encoder: Encoder | None = None,
    judge: Any = None,
) -> list[Finding]:
    """Findings for many sessions; the learned families score all their replies in one batch."""
    config = config or _DEFAULT
    if encoder is None and (
        config.detector == "embedding" or (config.detector == "lexical" and config.repeat_ask.use_embeddings)
    ):
        encoder = load_encoder()
    at = timestamp(now) if now is not None else None
    views = [SessionView(s, config, at, encoder) for s in sessions if s]
    if config.detector != "lexical":
        _score(views, config, encoder, judge)
    detectors = [d for signal, d in family(config).items() if getattr(config, signal).enabled]
    findings: list[Finding] = []
    for view in views:
        for detector in detectors:
            findings.extend(detector.run(view))
    return findings


def _score(views: list[SessionView], config: SignalConfig, encoder: Encoder | None, judge: Any) -> None:
    from .learned import load_model, score_views

    if config.detector == "llm":
        from .llm import score_views_llm

        score_views_llm(views, judge, load_model("learned"))
        return
    model = load_model(config.detector)
    thresholds = {**model.threshold, **config.thresholds()}
    for view in views:
        view.memo["thresholds"] = thresholds  # type: ignore[assignment]
    score_views(views, model, encoder)


def detect_many(
    sessions: Iterable[Sequence[TraceLike]],
    config: SignalConfig | None = None,
    now: datetime | None = None,
    *,
    encoder: Encoder | None = None,
    batch: int = 500,
) -> Iterator[Finding]:
    """``detect_batch`` over many sessions, lazily, ``batch`` sessions at a time."""
    chunk: list[Sequence[TraceLike]] = []
    for session in sessions:
        chunk.append(session)
        if len(chunk) >= batch:
            yield from detect_batch(chunk, config, now, encoder=encoder)
            chunk = []
    if chunk:
        yield from detect_batch(chunk, config, now, encoder=encoder)
