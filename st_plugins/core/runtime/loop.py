"""The batch loop of every encoder: tokenize once, batch by token length, run, put rows back in input order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["in_input_order", "progress"]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, show: bool, unit: str) -> Any:
    """A tqdm bar when asked for (tqdm is imported only then), else a no-op."""
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Batches", unit=unit)


def in_input_order(stream: Iterable[tuple[Any, ...]], n: int, show_progress: bool = False, unit: str = "text",
                   keep: tuple[bool, ...] = (True,)) -> list[Any]:
    """Collect ``(indices, features, *outputs)`` batches into one array per output, rows in input order.

    ``keep[i]`` False skips output ``i`` (returned as ``None``); an output given as ``None`` by the
    engine is skipped too. Outputs of one fixed-size row (1-D/2-D arrays) fill one array; others
    (per-row token embeddings of varying length) fill a list.

    Example:
        >>> batches = [(np.array([2, 0]), {}, np.array([[2.0], [0.0]])), (np.array([1]), {}, np.array([[1.0]]))]
        >>> in_input_order(batches, 3)[0].ravel().tolist()
        [0.0, 1.0, 2.0]
    """
    outs: list[Any] = [None] * len(keep)
    bar = progress(n, show_progress, unit)
    try:
        for idx, _feats, *arrays in stream:
            for k, array in enumerate(arrays[: len(keep)]):
                if not keep[k] or array is None:
                    continue
                if outs[k] is None:
                    outs[k] = np.empty((n, *array.shape[1:]), dtype=np.float32) if _fixed(array) else [None] * n
                _scatter(outs[k], idx, array)
            bar.update(len(idx))
    finally:
        bar.close()
    return outs


def _fixed(array: Any) -> bool:
    return isinstance(array, np.ndarray) and array.ndim <= 2


def _scatter(out: Any, idx: np.ndarray, rows: Any) -> None:
    if isinstance(out, np.ndarray):
        out[idx] = rows
    else:
        for row, i in enumerate(idx):
            out[int(i)] = rows[row]
