"""Storage: the only package that speaks SQL. Domain code uses these query functions and the Store.

The names below are resolved on first use (PEP 562), so importing a light submodule such as
``workbench.store.locate`` (the CLI finding ``.workbench/``) does not pull in SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .locate import StoreLocation, locate  # cheap (no SQLAlchemy); binds the function, not the submodule

if TYPE_CHECKING:
    from . import prompts, schema, traces
    from .engine import Store, open_store

__all__ = ["Store", "StoreLocation", "locate", "open_store", "prompts", "schema", "traces"]

_LAZY = {
    "Store": ".engine",
    "open_store": ".engine",
    "prompts": None,
    "schema": None,
    "traces": None,
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    source = _LAZY[name]
    if source is None:
        value: Any = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value
