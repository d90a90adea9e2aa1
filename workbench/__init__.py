"""workbench: capture LLM calls, turn user feedback into eval data, calibrate judges, ship golden sets.

    import workbench
    wb = workbench.open()
    client = wb.wrap(OpenAI())

Importing the package is nearly free (no SQLAlchemy, pydantic, numpy...): the names below are resolved
on first use (PEP 562), so an app pays for what it calls and ``import workbench`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .capture.wrap import context, trace_id
    from .errors import WorkbenchError
    from .models import Candidate, Feedback, Prompt, Trace
    from .workbench import Workbench, open

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "Feedback",
    "Prompt",
    "Trace",
    "Workbench",
    "WorkbenchError",
    "__version__",
    "context",
    "open",
    "trace_id",
]

_LAZY = {
    "trace_id": ".capture.wrap",
    "context": ".capture.wrap",
    "WorkbenchError": ".errors",
    "Candidate": ".models",
    "Feedback": ".models",
    "Prompt": ".models",
    "Trace": ".models",
    "Workbench": ".workbench",
    "open": ".workbench",
}


def __getattr__(name: str) -> Any:
    source = _LAZY.get(name)
    if source is None:
        try:  # a submodule not imported yet (``workbench.workbench.spool_dir``)
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
