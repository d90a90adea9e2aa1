"""Feedback: explicit votes and implicit signals mined from sessions.

Implicit detectors live in ``workbench.feedback.signals`` (pure functions, no I/O), their settings in
``workbench.feedback.config``; ``workbench.feedback.simulate`` generates labelled sessions for the
quality bench, tests and the demo.
"""

from __future__ import annotations

from .config import (
    AbandonConfig,
    PositiveConfig,
    PushbackConfig,
    RegenerateConfig,
    RepeatAskConfig,
    SignalConfig,
)
from .signals import DETECTORS, Finding, TraceLike, detect, detect_many, detector_sources

__all__ = [
    "DETECTORS",
    "AbandonConfig",
    "Finding",
    "PositiveConfig",
    "PushbackConfig",
    "RegenerateConfig",
    "RepeatAskConfig",
    "SignalConfig",
    "TraceLike",
    "detect",
    "detect_many",
    "detector_sources",
]
