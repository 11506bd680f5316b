"""Similarity functions with sentence-transformers' names, inputs and results (torch tensors).

torch is imported when a function runs, not when this module loads: the names
(:class:`SimilarityFunction`) are needed by every encoder, the functions only by their callers.
Without torch installed (the plain install) the same functions compute in numpy and return arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np

from st_plugins.core.extras import torch_installed
from st_plugins.errors import InputTypeError, InputValueError

__all__ = [
    "SimilarityFunction", "to_tensor", "normalize_embeddings", "cos_sim", "dot_score", "euclidean_sim",
    "manhattan_sim", "pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
]


def _torch() -> Any:
    import torch

    return torch


def _invalid(a: Any, name: str) -> InputTypeError:
    return InputTypeError(f"`{name}` must be embeddings: a 2-D tensor, numpy array or list of equal-length rows "
                          f"of numbers; got {type(a).__name__} ({a!r:.60}).")


def to_tensor(a: Any, name: str = "embeddings") -> Any:
    """A float tensor from a tensor, numpy array or (nested) list; 1-D input becomes one row.

    Without torch installed, a float numpy array (float32 unless the input is float64).

    Raises:
        InputTypeError: ``a`` is not numbers (``None``, text, objects, complex numbers, ragged rows).
        InputValueError: ``a`` is a scalar or has more than 2 dimensions.
    """
    if not torch_installed():
        return _to_array(a, name)
    torch = _torch()
    Tensor = torch.Tensor
    try:
        if isinstance(a, Tensor):
            t = a
        elif isinstance(a, np.ndarray):
            t = torch.from_numpy(a)
        elif isinstance(a, (list, tuple)) and a and isinstance(a[0], Tensor):
            t = torch.stack(list(a))
        elif isinstance(a, (list, tuple)) and a and isinstance(a[0], np.ndarray):
            t = torch.from_numpy(np.stack(a))
        elif a is None or isinstance(a, (str, bytes, dict)):
            raise TypeError
        else:
            t = torch.tensor(a)
    except (TypeError, ValueError, RuntimeError):
        raise _invalid(a, name) from None
    if t.is_complex():
        raise InputTypeError(f"`{name}` must hold real numbers; got {t.dtype}. Pass the real part, e.g. x.real.")
    if t.dim() not in (1, 2):
        raise InputValueError(f"`{name}` must be 1-D (one vector) or 2-D (one row per vector); got shape "
                              f"{tuple(t.shape)}.")
    if not t.is_floating_point():
        t = t.float()
    return t.unsqueeze(0) if t.dim() == 1 else t


def _to_array(a: Any, name: str) -> np.ndarray:
    """:func:`to_tensor` without torch: the same rules, a numpy array out."""
    if a is None or isinstance(a, (str, bytes, dict)):
        raise _invalid(a, name)
    try:
        t = np.stack(list(a)) if isinstance(a, (list, tuple)) and a and isinstance(a[0], np.ndarray) else np.asarray(a)
    except (TypeError, ValueError):
        raise _invalid(a, name) from None
    if t.dtype == object or t.dtype.kind not in "biufc":
        raise _invalid(a, name)
    if t.dtype.kind == "c":
        raise InputTypeError(f"`{name}` must hold real numbers; got {t.dtype}. Pass the real part, e.g. x.real.")
    if t.ndim not in (1, 2):
        raise InputValueError(f"`{name}` must be 1-D (one vector) or 2-D (one row per vector); got shape {t.shape}.")
    if t.dtype.kind != "f":
        t = t.astype(np.float32)
    return t[None, :] if t.ndim == 1 else t


def normalize_embeddings(embeddings: Any) -> Any:
    """Each row L2-normalized (a torch tensor in, a torch tensor out), as ``sentence_transformers.util``."""
    if isinstance(embeddings, np.ndarray):
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        return embeddings / np.maximum(norms, 1e-12).astype(embeddings.dtype)
    return _torch().nn.functional.normalize(embeddings, p=2, dim=1)


def _pair(a: Any, b: Any, names: tuple[str, str] = ("a", "b"), pairwise: bool = False) -> tuple[Any, Any]:
    """Both inputs as tensors of one dtype (float32 queries against a float64 store, say), of one dimension
    (and, ``pairwise``, of one length, or one of them a single row)."""
    a, b = to_tensor(a, names[0]), to_tensor(b, names[1])
    if a.shape[1] != b.shape[1]:
        raise InputValueError(f"`{names[0]}` and `{names[1]}` must have the same dimension; got {a.shape[1]} and "
                              f"{b.shape[1]} (shapes {tuple(a.shape)} and {tuple(b.shape)}).")
    if pairwise and len(a) != len(b) and 1 not in (len(a), len(b)):
        raise InputValueError(f"`{names[0]}` and `{names[1]}` must have as many rows (pairwise); got {len(a)} and "
                              f"{len(b)}.")
    if isinstance(a, np.ndarray):
        dtype = np.result_type(a.dtype, b.dtype)
        return a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    dtype = _torch().promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(device=a.device, dtype=dtype)


def _cdist(a: Any, b: Any, p: float) -> Any:
    if isinstance(a, np.ndarray):
        diff = np.abs(a[:, None, :] - b[None, :, :])
        return diff.sum(-1) if p == 1.0 else np.sqrt((diff * diff).sum(-1))
    return _torch().cdist(a, b, p=p)


def _abs_sum(x: Any) -> Any:
    return np.abs(x).sum(axis=-1) if isinstance(x, np.ndarray) else x.abs().sum(dim=-1)


def _norm(x: Any) -> Any:
    return np.linalg.norm(x, axis=-1) if isinstance(x, np.ndarray) else _torch().linalg.vector_norm(x, dim=-1)


def _topk(scores: Any, k: int, largest: bool = True) -> tuple[Any, Any]:
    """``(values, indices)`` of the ``k`` best entries of each row, best first (``torch.topk`` for numpy too).

    Example:
        >>> values, idx = _topk(np.array([[0.1, 0.9, 0.5]]), 2)
        >>> values.tolist(), idx.tolist()
        ([[0.9, 0.5]], [[1, 2]])
    """
    if not isinstance(scores, np.ndarray):
        return scores.topk(k, dim=-1, largest=largest)
    keyed = -scores if largest else scores
    if k < scores.shape[-1]:
        part = np.argpartition(keyed, k - 1, axis=-1)[..., :k]
    else:
        part = np.broadcast_to(np.arange(scores.shape[-1]), scores.shape).copy()
    order = np.take_along_axis(part, np.argsort(np.take_along_axis(keyed, part, axis=-1), axis=-1, kind="stable"), -1)
    return np.take_along_axis(scores, order, axis=-1), order


def cos_sim(a: Any, b: Any) -> Any:
    """``res[i][j] = cos(a[i], b[j])``.

    Example:
        >>> cos_sim([[1.0, 0.0]], [[1.0, 1.0], [0.0, 2.0]]).tolist()
        [[0.7071067690849304, 0.0]]
    """
    a, b = _pair(a, b)
    return normalize_embeddings(a) @ normalize_embeddings(b).T


def dot_score(a: Any, b: Any) -> Any:
    a, b = _pair(a, b)
    return a @ b.T


def euclidean_sim(a: Any, b: Any) -> Any:
    """Negative euclidean distance."""
    return -_cdist(*_pair(a, b), p=2.0)


def manhattan_sim(a: Any, b: Any) -> Any:
    """Negative manhattan distance."""
    return -_cdist(*_pair(a, b), p=1.0)


def pairwise_cos_sim(a: Any, b: Any) -> Any:
    a, b = _pair(a, b, pairwise=True)
    return (normalize_embeddings(a) * normalize_embeddings(b)).sum(-1)


def pairwise_dot_score(a: Any, b: Any) -> Any:
    a, b = _pair(a, b, pairwise=True)
    return (a * b).sum(-1)


def pairwise_euclidean_sim(a: Any, b: Any) -> Any:
    a, b = _pair(a, b, pairwise=True)
    return -_norm(a - b)


def pairwise_manhattan_sim(a: Any, b: Any) -> Any:
    a, b = _pair(a, b, pairwise=True)
    return -_abs_sum(a - b)


class SimilarityFunction(str, Enum):
    """The four similarity functions sentence-transformers names."""

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"

    @staticmethod
    def possible_values() -> list[str]:
        return ["cosine", "dot", "euclidean", "manhattan"]

    @classmethod
    def check(cls, name: Any) -> str:
        value = name.value if isinstance(name, SimilarityFunction) else name
        if value == "dot_product":
            value = "dot"
        if value not in cls.possible_values():
            raise InputValueError(
                f"`similarity_fn_name` must be one of {cls.possible_values()}; got {name!r}."
            )
        return value

    @staticmethod
    def to_similarity_fn(name: Any) -> Callable[[Any, Any], Any]:
        return _MATRIX[SimilarityFunction.check(name)]

    @staticmethod
    def to_similarity_pairwise_fn(name: Any) -> Callable[[Any, Any], Any]:
        return _PAIRWISE[SimilarityFunction.check(name)]


_MATRIX = {"cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim, "manhattan": manhattan_sim}
_PAIRWISE = {
    "cosine": pairwise_cos_sim, "dot": pairwise_dot_score,
    "euclidean": pairwise_euclidean_sim, "manhattan": pairwise_manhattan_sim,
}
