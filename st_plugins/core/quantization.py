"""Embedding quantization (int8, uint8, binary, ubinary) as in sentence-transformers."""

from __future__ import annotations

from typing import Any

import numpy as np

from st_plugins.errors import InputValueError

__all__ = ["PRECISIONS", "quantize_embeddings", "quantization_ranges"]

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def quantization_ranges(calibration: np.ndarray) -> np.ndarray:
    """Per-dimension ``[min; max]`` ranges, shape ``(2, dim)``, from calibration embeddings."""
    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.ndim != 2 or calibration.shape[0] < 2:
        raise InputValueError(
            "int8/uint8 ranges need at least 2 calibration embeddings (shape (n, dim), n >= 2); "
            f"got shape {calibration.shape}. Pass `ranges` or more `calibration_embeddings`."
        )
    return np.vstack((calibration.min(axis=0), calibration.max(axis=0)))


def _to_numpy(embeddings: Any) -> np.ndarray:
    if hasattr(embeddings, "detach"):
        return embeddings.detach().cpu().float().numpy()
    if isinstance(embeddings, list) and embeddings and hasattr(embeddings[0], "detach"):
        return np.stack([e.detach().cpu().float().numpy() for e in embeddings])
    return np.asarray(embeddings)


def quantize_embeddings(
    embeddings: Any,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize float embeddings; same results as sentence-transformers' ``quantize_embeddings``.

    Example:
        >>> quantize_embeddings(np.array([[0.5, -0.5], [-1.0, 1.0]]), "ubinary").tolist()
        [[128], [64]]
    """
    if precision not in PRECISIONS:
        raise InputValueError(f"`precision` must be one of {list(PRECISIONS)}; got {precision!r}.")
    emb = _to_numpy(embeddings)
    if emb.dtype in (np.int8, np.uint8):
        raise InputValueError("Embeddings to quantize must be float, not int8/uint8.")
    if precision == "float32":
        return emb.astype(np.float32)
    if precision.endswith("int8"):
        if ranges is None:
            ranges = quantization_ranges(calibration_embeddings if calibration_embeddings is not None else emb)
        ranges = np.asarray(ranges, dtype=np.float32)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((emb - starts) / steps), 0, 255)
        return q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
    packed = np.packbits(emb > 0, axis=-1)
    return (packed - 128).astype(np.int8) if precision == "binary" else packed
