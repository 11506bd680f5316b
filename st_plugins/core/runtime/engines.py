"""The runtime's forward passes on the CPU: a cached graph, then pooling and heads in numpy (no torch).

An engine turns padded batches into ``(indices, features, *outputs)``: for a bi-encoder the sentence
embeddings and (when asked) each row's token embeddings, for a cross-encoder the logits. The torch
engines in :mod:`st_plugins.core.torch_models` yield the same tuples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from st_plugins.core.runtime.graphs import Graph
from st_plugins.core.runtime.heads import NumpyDense
from st_plugins.core.runtime.pooling import normalize, pool
from st_plugins.core.spec import DenseSpec, ModelSpec, PoolingSpec

__all__ = ["OrtBiEngine", "OrtCrossEngine", "token_rows"]

Batches = Iterable[tuple[np.ndarray, dict[str, np.ndarray]]]


def token_rows(tokens: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """Each row's token embeddings up to its last real token (sentence-transformers' ``token_embeddings``).

    Example:
        >>> [r.shape for r in token_rows(np.zeros((2, 3, 4)), np.array([[1, 1, 0], [1, 1, 1]]))]
        [(2, 4), (3, 4)]
    """
    rows = []
    for row, m in zip(tokens, mask):
        real = np.flatnonzero(m)
        rows.append(row[: int(real[-1]) + 1 if len(real) else 1])
    return rows


def apply_steps(spec: ModelSpec, heads: list[Any], tokens: Any, mask: Any, prompt_length: int | None) -> Any:
    """Pooling then Dense/Normalize in the folder's module order (numpy or torch ``heads``)."""
    prompt_length = None if spec.pooling.include_prompt else prompt_length
    x, rest = None, iter(heads)
    for step in spec.steps:
        x = pool(tokens, mask, step.modes, prompt_length) if isinstance(step, PoolingSpec) else next(rest)(x)
    return x


class OrtBiEngine:
    """Token embeddings from the graph, pooled and passed through the heads in numpy."""

    def __init__(self, graph: Graph, spec: ModelSpec) -> None:
        self.graph, self.spec = graph, spec
        self.heads = [NumpyDense(s.path, s.activation) if isinstance(s, DenseSpec) else normalize
                      for s in spec.steps if not isinstance(s, PoolingSpec)]

    def stream(self, batches: Batches, prompt_length: int | None = None,
               want_tokens: bool = False) -> Iterator[tuple[Any, ...]]:
        for idx, feats, tokens in self.graph.runner.stream(batches):
            emb = apply_steps(self.spec, self.heads, tokens, feats["attention_mask"], prompt_length)
            yield idx, feats, emb, token_rows(tokens, feats["attention_mask"]) if want_tokens else None


class OrtCrossEngine:
    """Logits from the graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def stream(self, batches: Batches) -> Iterator[tuple[Any, ...]]:
        yield from self.graph.runner.stream(batches)
