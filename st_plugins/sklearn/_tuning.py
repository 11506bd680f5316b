"""What :class:`CrossEncoderScorer` learns from labels: checks on ``y``, the accuracy-optimal threshold,
Spearman's rho, and fine-tuning handed to :mod:`st_plugins.training` (no training code here)."""

from __future__ import annotations

import copy
import numbers
import os
import tempfile
from typing import Any

import numpy as np

from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["check_threshold_and_epochs", "check_y", "is_binary", "best_threshold", "spearman", "fine_tune"]


def check_threshold_and_epochs(threshold: Any, epochs: Any) -> None:
    """Raise :class:`InputValueError` unless ``threshold`` is None or finite and ``epochs`` an int >= 0."""
    if threshold is not None and (isinstance(threshold, bool) or not (isinstance(threshold, numbers.Real)
                                                                      and np.isfinite(threshold))):
        raise InputValueError(f"`threshold` must be a finite number or None; got {threshold!r}.")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise InputValueError(f"`epochs` must be an int >= 0; got {epochs!r}.")


def check_y(y: Any, n_pairs: int) -> np.ndarray | None:
    """``y`` as a 1-D float array of ``n_pairs`` finite numbers (``None`` stays ``None``).

    Example:
        >>> check_y([0, 1, 1], 2)
        Traceback (most recent call last):
        ...
        st_plugins.errors.InputValueError: `y` must hold one label per pair (2); got 3.
    """
    if y is None:
        return None
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputTypeError(f"`y` must hold numbers (relevance labels or 0/1); got {type(y).__name__}: {exc}.") from exc
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise InputValueError(f"`y` must be 1-D, one label per pair; got shape {arr.shape}.")
    if len(arr) != n_pairs:
        raise InputValueError(f"`y` must hold one label per pair ({n_pairs}); got {len(arr)}.")
    if not np.isfinite(arr).all():
        raise InputValueError("`y` must hold finite numbers; got NaN or inf. Drop or fill those labels.")
    return arr


def is_binary(y: np.ndarray) -> bool:
    """True when every label is 0 or 1 (bool labels included): ``score`` then means accuracy."""
    return bool(np.isin(y, (0.0, 1.0)).all())


def best_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """The cut ``t`` maximising the accuracy of ``scores >= t`` against binary ``y`` (lowest on ties;
    midway between neighbouring scores).

    Example:
        >>> round(best_threshold(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])), 6)
        0.225
    """
    order = np.argsort(scores, kind="stable")
    s, positive = np.asarray(scores, dtype=np.float64)[order], np.asarray(y)[order] == 1
    negatives_below = np.concatenate([[0], np.cumsum(~positive)])
    positives_above = positive.sum() - np.concatenate([[0], np.cumsum(positive)])
    valid = np.ones(len(s) + 1, dtype=bool)
    valid[1:-1] = s[:-1] < s[1:]  # never cut between equal scores
    k = int(np.flatnonzero(valid)[np.argmax((negatives_below + positives_above)[valid])])
    if k == 0:
        return float(s[0])
    if k == len(s):
        return float(np.nextafter(s[-1], np.inf))
    return float((s[k - 1] + s[k]) / 2)


def spearman(scores: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (``nan`` when either side is constant)."""
    from scipy.stats import spearmanr

    if np.ptp(scores) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(scores, y).statistic)


def fine_tune(base: Any, pairs: list[tuple[str, str]], y: np.ndarray | None, est: Any) -> str:
    """Train a copy of ``base`` (never the shared instance) with binary cross-entropy on ``y`` in [0, 1];
    save it to a new folder under ``est.output_dir`` (default: a temporary folder) and return its path."""
    try:
        from st_plugins.training import BinaryCrossEntropyLoss, Example, Trainer, TrainingArguments
    except ImportError as exc:
        raise InputValueError(
            f"`epochs` > 0 fine-tunes with st_plugins.training, which cannot be imported here ({exc}). "
            "Use epochs=0, or install st-plugins with its training package."
        ) from exc
    if y is None or y.min() < 0 or y.max() > 1:
        got = "no y" if y is None else f"y in [{y.min():g}, {y.max():g}]"
        raise InputValueError(f"`epochs` > 0 needs labels `y` in [0, 1] (binary or soft relevance); got {got}. "
                              "Scale graded labels first, e.g. y / 5 for STS scores.")
    if base.num_labels != 1:
        raise InputValueError(f"`epochs` > 0 needs a one-label cross-encoder; `model` has {base.num_labels} labels.")
    model = copy.deepcopy(base)
    args = TrainingArguments(epochs=int(est.epochs), batch_size=est.batch_size, learning_rate=est.learning_rate,
                             seed=est.random_state, show_progress_bar=est.show_progress_bar)
    examples = [Example(pair, float(label)) for pair, label in zip(pairs, y)]
    if est.output_dir is not None:
        os.makedirs(est.output_dir, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="cross-encoder-", dir=est.output_dir)  # new per fit: cache keys stay fresh
    Trainer(model, BinaryCrossEntropyLoss(model), examples, args).train(output_path=folder)
    return folder
