"""Feedback: explicit votes and implicit signals mined from sessions.

Implicit detectors live in ``workbench.feedback.signals`` (pure functions, no I/O), their settings in
``workbench.feedback.config``; the learned detectors' training script is
``python -m workbench.feedback.signals.train``.
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
from .signals import DETECTORS, Finding, TraceLike, detect, detect_batch, detect_many, detector_sources

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
    "detect_batch",
    "detect_many",
    "detector_sources",
]
