"""Pooling, Dense and Normalize in numpy: the torch-free twins of :mod:`st_plugins.core.pooling` and heads.

Pure functions on ``tokens`` ``(batch, seq, dim)`` float32 and ``mask`` ``(batch, seq)`` int; each mode
matches the torch version (and sentence-transformers) on right- and left-padded batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from st_plugins.errors import ModelFormatError

__all__ = ["pool", "exclude_prompt", "normalize", "NumpyDense", "ACTIVATIONS"]


def exclude_prompt(mask: np.ndarray, prompt_length: int) -> np.ndarray:
    """Zero the first ``prompt_length`` real tokens of each row (a copy; handles left padding)."""
    first = mask.argmax(axis=1)
    positions = np.arange(mask.shape[1])[None, :]
    return np.where(positions < (first + prompt_length)[:, None], 0, mask)


def _mean_parts(tokens: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = mask[..., None].astype(np.float32)
    return (tokens * m).sum(axis=1), np.maximum(m.sum(axis=1), 1e-9)


def _last_token(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    seq = mask.shape[1]
    flipped = mask[:, ::-1]
    idx = np.where(flipped.max(axis=1) == 0, seq - 1, flipped.argmax(axis=1))
    rows = np.arange(len(mask))
    return tokens[rows, seq - idx - 1] * mask[rows, seq - idx - 1][:, None]


def _weighted_mean(tokens: np.ndarray, mask: np.ndarray, original: np.ndarray) -> np.ndarray:
    weights = np.arange(1, tokens.shape[1] + 1, dtype=np.float32)[None, :, None]
    weights = weights - original.argmax(axis=1).astype(np.float32)[:, None, None]
    weighted = mask[..., None].astype(np.float32) * weights
    return (tokens * weighted).sum(axis=1) / np.maximum(weighted.sum(axis=1), 1e-9)


def pool(tokens: np.ndarray, mask: np.ndarray, modes: tuple[str, ...], prompt_length: int | None = None) -> np.ndarray:
    """Pool ``tokens`` under ``mask``; modes are concatenated in order.

    Example:
        >>> t = np.array([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]], dtype=np.float32)
        >>> pool(t, np.array([[1, 1, 0]]), ("mean", "max", "cls", "lasttoken")).tolist()
        [[2.0, 3.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]]
    """
    original = mask
    if prompt_length:
        mask = exclude_prompt(mask, prompt_length)
    out = []
    for mode in modes:
        if mode == "cls":
            out.append(tokens[np.arange(len(mask)), mask.argmax(axis=1)])
        elif mode == "max":
            out.append(np.where(mask[..., None] == 0, -np.inf, tokens).max(axis=1).astype(np.float32))
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            total, count = _mean_parts(tokens, mask)
            out.append(total / (count if mode == "mean" else np.sqrt(count)))
        elif mode == "weightedmean":
            out.append(_weighted_mean(tokens, mask, original))
        elif mode == "lasttoken":
            out.append(_last_token(tokens, mask))
        else:
            raise ModelFormatError(f"Unknown pooling mode {mode!r}.")
    return np.concatenate(out, axis=-1).astype(np.float32)


def normalize(x: np.ndarray) -> np.ndarray:
    """L2-normalize rows (zero rows stay zero), as ``torch.nn.functional.normalize``.

    Example:
        >>> normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _gelu(x: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return (0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))).astype(x.dtype)


ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": lambda x: x,
    "torch.nn.modules.activation.Tanh": np.tanh,
    "torch.nn.modules.activation.ReLU": lambda x: np.maximum(x, 0),
    "torch.nn.modules.activation.Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "torch.nn.modules.activation.GELU": _gelu,
}


class NumpyDense:
    """``activation(x @ W.T + b)`` from a sentence-transformers Dense folder (``model.safetensors``).

    Raises:
        ModelFormatError: No safetensors weights, or an activation the lean runtime does not know.
    """

    def __init__(self, folder: Path, activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise ModelFormatError(
                f"The lean runtime supports Dense activations {sorted(ACTIVATIONS)}; {folder} uses {activation!r}. "
                "Use st_plugins.SentenceTransformer instead."
            )
        if not (folder / "model.safetensors").is_file():
            raise ModelFormatError(f"{folder} has no model.safetensors; the lean runtime reads safetensors only.")
        from safetensors.numpy import load_file

        state = load_file(str(folder / "model.safetensors"))
        self.weight = np.ascontiguousarray(state["linear.weight"].astype(np.float32).T)
        self.bias = state["linear.bias"].astype(np.float32) if "linear.bias" in state else None
        self.activation = ACTIVATIONS[activation]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.weight
        return self.activation(y + self.bias if self.bias is not None else y)
