"""Implicit-signal detectors: pure functions from one session's traces to findings.

    findings = detect(session_traces, SignalConfig(), now=datetime.now(UTC))
    rows = [f.to_feedback() for f in findings]     # the miner stores these (idempotency_key is unique)

Detectors never do I/O. ``now`` decides abandonment of the last answer (None: undecided). Pass the
traces of one session (any order; they are sorted by created_at). Objects only need the attributes of
``TraceLike``, so the miner may pass light row objects instead of ``Trace`` models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..config import SignalConfig
from . import abandon, positive, pushback, regenerate, repeat_ask
from .base import DetectorInfo, Finding, SessionView, TraceLike, timestamp
from .embeddings import Encoder, embeddings_available, load_encoder

__all__ = [
    "DETECTORS",
    "Detector",
    "DetectorInfo",
    "Encoder",
    "Finding",
    "SessionView",
    "TraceLike",
    "detect",
    "detect_many",
    "detector_sources",
    "embeddings_available",
    "load_encoder",
]


@dataclass(frozen=True, slots=True)
class Detector:
    info: DetectorInfo
    run: Callable[[SessionView], list[Finding]]


DETECTORS: dict[str, Detector] = {
    d.info.name: d
    for d in (
        Detector(regenerate.INFO, regenerate.detect_regenerate),
        Detector(repeat_ask.INFO, repeat_ask.detect_repeat_ask),
        Detector(pushback.INFO, pushback.detect_pushback),
        Detector(positive.INFO, positive.detect_positive),
        Detector(abandon.INFO, abandon.detect_abandon),
    )
}
_DEFAULT = SignalConfig()


def detector_sources(config: SignalConfig | None = None) -> list[str]:
    """``name@version`` of every enabled detector (what a mining run records it ran)."""
    config = config or _DEFAULT
    return [d.info.source for name, d in DETECTORS.items() if getattr(config, name).enabled]


def detect(
    session: Sequence[TraceLike],
    config: SignalConfig | None = None,
    now: datetime | None = None,
    *,
    encoder: Encoder | None = None,
) -> list[Finding]:
    """All findings of the enabled detectors for one session's traces.

    ``encoder`` is only used with ``repeat_ask.use_embeddings``; when that is set and no encoder is
    given, the bundled MiniLM is loaded (ConfigError if the extra is not installed).
    """
    if not session:
        return []
    config = config or _DEFAULT
    if config.repeat_ask.use_embeddings and encoder is None:
        encoder = load_encoder()
    view = SessionView(session, config, timestamp(now) if now is not None else None, encoder)
    findings: list[Finding] = []
    for name, detector in DETECTORS.items():
        if getattr(config, name).enabled:
            findings.extend(detector.run(view))
    return findings


def detect_many(
    sessions: Iterable[Sequence[TraceLike]],
    config: SignalConfig | None = None,
    now: datetime | None = None,
    *,
    encoder: Encoder | None = None,
) -> Iterator[Finding]:
    """``detect`` over many sessions, lazily (the miner streams sessions from the store)."""
    for session in sessions:
        yield from detect(session, config, now, encoder=encoder)
