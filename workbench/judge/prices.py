"""Judge call prices: USD per million tokens by model name, overridable; unknown means unknown.

A model without a price gets cost None (not 0), so a total never silently under-reports spend.
Dated snapshots (``gpt-4o-mini-2024-07-18``) match their family (``gpt-4o-mini``) by the longest
name prefix followed by ``-``. The table is a convenience, dated below; pass your own for contracts,
other providers, or when list prices change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import ValidationError

__all__ = ["DEFAULT_PRICES", "PRICES_AS_OF", "Price", "cost_of", "load_prices", "price_for"]


@dataclass(frozen=True)
class Price:
    """USD per one million input (prompt) and output (completion) tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


PRICES_AS_OF = "2025-06"
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "gpt-3.5-turbo": Price(0.50, 1.50),
}


def price_for(model: str | None, prices: Mapping[str, Price] | None = None) -> Price | None:
    """Exact name first, then the longest ``family-`` prefix; None when the model is not in the table."""
    if not model:
        return None
    table = DEFAULT_PRICES if prices is None else prices
    if model in table:
        return table[model]
    families = [name for name in table if model.startswith(name + "-")]
    return table[max(families, key=len)] if families else None


def cost_of(
    prices: Mapping[str, Price] | None,
    models: Iterable[str | None],
    prompt_tokens: int | None,
    completion_tokens: int | None,
) -> float | None:
    """Cost under the first of ``models`` (e.g. resolved, then requested name) that has a price."""
    if prompt_tokens is None or completion_tokens is None:
        return None
    for model in models:
        price = price_for(model, prices)
        if price is not None:
            return price.cost(prompt_tokens, completion_tokens)
    return None


def load_prices(path: str | Path, *, base: Mapping[str, Price] | None = None) -> dict[str, Price]:
    """``{"model": {"input": 0.15, "output": 0.6}}`` (USD per 1M tokens) over ``base`` (default table)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"cannot read prices file {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: expected an object of model -> {{input, output}}")
    table = dict(DEFAULT_PRICES if base is None else base)
    for model, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
            raise ValidationError(f'{path}: field \'{model}\' must be {{"input": USD/1M, "output": USD/1M}}')
        values = []
        for name in ("input", "output"):
            value = entry[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValidationError(f"{path}: field '{model}.{name}' is {value!r}, not a non-negative number")
            values.append(float(value))
        table[model] = Price(*values)
    return table
