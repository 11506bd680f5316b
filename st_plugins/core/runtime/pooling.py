"""Pooling and normalization, written once for numpy (the runtime) and torch (training, GPU).

Pure functions on ``tokens`` ``(batch, seq, dim)`` and ``mask`` ``(batch, seq)``. They use only
operations numpy and torch spell the same way (``x.sum(axis=1)``, ``xp.where``, ...), with ``xp``
the array's own module, so a torch input stays on its device and keeps its gradient. Each mode matches
sentence-transformers' ``Pooling`` on right- and left-padded batches.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from st_plugins.errors import ModelFormatError

__all__ = ["pool", "exclude_prompt", "normalize", "POOLING_MODES"]

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")


def _xp(array: Any) -> Any:
    return np if isinstance(array, np.ndarray) else sys.modules["torch"]


def _cast(x: Any, dtype: Any) -> Any:
    return x.astype(dtype, copy=False) if isinstance(x, np.ndarray) else x.to(dtype)


def _positions(xp: Any, like: Any, length: int) -> Any:
    if xp is np:
        return np.arange(length)
    return xp.arange(length, device=like.device)


def exclude_prompt(mask: Any, prompt_length: int) -> Any:
    """A copy of ``mask`` with the first ``prompt_length`` real tokens of each row zeroed (left padding too).

    Example:
        >>> exclude_prompt(np.array([[1, 1, 1, 0], [0, 1, 1, 1]]), 2).tolist()
        [[0, 0, 1, 0], [0, 0, 0, 1]]
    """
    xp = _xp(mask)
    first = mask.argmax(axis=1)
    positions = _positions(xp, mask, mask.shape[1])[None, :]
    return xp.where(positions < (first + prompt_length)[:, None], 0, mask)


def _mean_parts(tokens: Any, mask: Any, xp: Any) -> tuple[Any, Any]:
    acc = xp.float32 if tokens.dtype in _half_types(xp) else tokens.dtype
    m = _cast(mask[..., None], tokens.dtype)
    total = (tokens * m).sum(axis=1, dtype=acc)
    return total, m.sum(axis=1, dtype=acc).clip(min=1e-9)


def _half_types(xp: Any) -> tuple[Any, ...]:
    return (np.float16,) if xp is np else (xp.float16, xp.bfloat16)


def _weighted_mean(tokens: Any, mask: Any, original: Any, xp: Any) -> Any:
    acc = xp.float32 if tokens.dtype in _half_types(xp) else tokens.dtype
    weights = _cast(_positions(xp, tokens, tokens.shape[1]) + 1, acc)[None, :, None]
    weights = weights - _cast(original.argmax(axis=1), acc)[:, None, None]
    weighted = _cast(mask[..., None], acc) * weights
    return (tokens * weighted).sum(axis=1) / weighted.sum(axis=1).clip(min=1e-9)


def _last_token(tokens: Any, mask: Any, xp: Any) -> Any:
    # The last real position (right or left padding); an all-zero row picks position 0 and gets zeroed.
    last = (mask * _positions(xp, mask, mask.shape[1])[None, :]).argmax(axis=1)
    rows = _positions(xp, mask, mask.shape[0])
    return tokens[rows, last] * _cast(mask[rows, last][:, None], tokens.dtype)


def _one(mode: str, tokens: Any, mask: Any, original: Any, xp: Any, parts: list) -> Any:
    if mode == "cls":
        return tokens[_positions(xp, mask, mask.shape[0]), mask.argmax(axis=1)]
    if mode == "max":
        return xp.amax(xp.where(mask[..., None] == 0, -np.inf, tokens), axis=1)
    if mode in ("mean", "mean_sqrt_len_tokens"):
        parts = parts or _mean_parts(tokens, mask, xp)
        return parts[0] / (parts[1] if mode == "mean" else xp.sqrt(parts[1]))
    if mode == "weightedmean":
        return _weighted_mean(tokens, mask, original, xp)
    if mode == "lasttoken":
        return _last_token(tokens, mask, xp)
    raise ModelFormatError(f"Unknown pooling mode {mode!r}; allowed: {POOLING_MODES}.")


def pool(tokens: Any, mask: Any, modes: tuple[str, ...], prompt_length: int | None = None) -> Any:
    """Pool ``tokens`` under ``mask`` (numpy or torch, same module for both); modes are concatenated.

    Args:
        tokens: Token embeddings ``(batch, seq, dim)``.
        mask: Attention mask ``(batch, seq)`` (1 = real token).
        modes: Pooling modes from :data:`POOLING_MODES`, concatenated in order.
        prompt_length: Tokens of the prompt to leave out (``include_prompt=False``).

    Returns:
        ``(batch, dim * len(modes))`` in the dtype of ``tokens``.

    Example:
        >>> t = np.array([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]], dtype=np.float32)
        >>> pool(t, np.array([[1, 1, 0]]), ("mean", "max", "cls", "lasttoken")).tolist()
        [[2.0, 3.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]]
    """
    xp = _xp(tokens)
    original = mask
    if prompt_length:
        mask = exclude_prompt(mask, prompt_length)
    out, parts = [], []
    for mode in modes:
        if mode in ("mean", "mean_sqrt_len_tokens") and not parts:
            parts = list(_mean_parts(tokens, mask, xp))
        out.append(_cast(_one(mode, tokens, mask, original, xp, parts), tokens.dtype))
    return xp.concatenate(out, axis=-1)


def normalize(x: Any) -> Any:
    """L2-normalize rows (zero rows stay zero), as ``torch.nn.functional.normalize``.

    Example:
        >>> normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """
    xp = _xp(x)
    norms = xp.linalg.norm(x, axis=-1, keepdims=True) if xp is np else xp.linalg.vector_norm(x, dim=-1, keepdim=True)
    return x / norms.clip(min=1e-12)
