"""One exception hierarchy, so callers (and the CLI) can catch ``WorkbenchError`` and print one line.

Every message names the thing that was wrong (the id, the file and line, the field) so a user
can act on it without a traceback.
"""

from __future__ import annotations

__all__ = [
    "CaptureError",
    "ConfigError",
    "ExportError",
    "GoldenSetError",
    "InvalidContextError",
    "JudgeError",
    "NotFoundError",
    "RubricError",
    "SchemaTooNewError",
    "SpoolError",
    "StatisticsError",
    "StoreError",
    "StoreUnavailableError",
    "ValidationError",
    "WorkbenchError",
]


class WorkbenchError(Exception):
    """Base of every error workbench raises on purpose; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(WorkbenchError):
    """A setting, URL or option is malformed."""

    exit_code = 2


class ValidationError(WorkbenchError, ValueError):
    """Input data is malformed; the message names the field (and line, for files)."""

    exit_code = 2


class InvalidContextError(ValidationError, TypeError):
    """The ``workbench={...}`` argument of a wrapped call has unknown keys or wrong types."""


class NotFoundError(WorkbenchError, LookupError):
    """An id, name or version does not exist in the store or on disk."""

    exit_code = 4


class StoreError(WorkbenchError):
    """The store could not do what was asked."""

    exit_code = 5


class StoreUnavailableError(StoreError):
    """The store cannot be reached or is locked; captured records stay in the spool."""


class SchemaTooNewError(StoreError):
    """The store was migrated by a newer workbench than this one."""


class CaptureError(WorkbenchError):
    """Capture machinery failed (never raised into the app's LLM calls)."""


class SpoolError(CaptureError):
    """The spool directory or a segment cannot be read or written."""


class RubricError(ValidationError):
    """A rubric file is malformed; the message names file, field and line."""


class JudgeError(WorkbenchError):
    """The judge runner could not complete."""


class StatisticsError(ValidationError):
    """Not enough (or degenerate) data for the statistic asked for."""


class GoldenSetError(WorkbenchError):
    """A golden set is missing, empty, or fails verification."""

    exit_code = 6


class ExportError(WorkbenchError):
    """An export could not be written; no partial file is left behind."""

    exit_code = 7
