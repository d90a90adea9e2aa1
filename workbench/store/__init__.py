"""Storage: the only package that speaks SQL. Domain code uses these query functions and the Store."""

from . import prompts, schema, traces
from .engine import Store, open_store
from .locate import StoreLocation, locate

__all__ = ["Store", "StoreLocation", "locate", "open_store", "prompts", "schema", "traces"]
