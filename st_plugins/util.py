"""``st_plugins.util``: the sentence-transformers ``util`` functions (imports torch when used)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "pairwise_cos_sim", "pairwise_dot_score",
    "pairwise_euclidean_sim", "pairwise_manhattan_sim", "normalize_embeddings", "semantic_search",
    "paraphrase_mining", "paraphrase_mining_embeddings", "community_detection", "quantize_embeddings",
]

_HOMES = {
    **{n: "st_plugins.core.similarity" for n in __all__[:9]},
    **{n: "st_plugins.core.search" for n in __all__[9:13]},
    "quantize_embeddings": "st_plugins.core.quantization",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'st_plugins.util' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
