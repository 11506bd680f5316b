"""``CrossEncoderScorer``: (query, document) pairs in, relevance scores out, as a scikit-learn estimator."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from st_plugins.core.cache import get_model
from st_plugins.core.validation import check_positive_int
from st_plugins.errors import InputValueError
from st_plugins.sklearn._embedding import check_bool, check_model
from st_plugins.sklearn._inputs import pairs_from_X, record_input_features
from st_plugins.sklearn._tuning import (
    best_threshold, check_threshold_and_epochs, check_y, fine_tune, is_binary, spearman,
)

__all__ = ["CrossEncoderScorer"]


class CrossEncoderScorer(BaseEstimator):
    """Score text pairs with a cross-encoder: :meth:`predict` gives relevance, :meth:`score` rates it.

    ``X`` is an ``(n, 2)`` array of str, a list of ``(query, document)`` pairs, or a two-column
    DataFrame. :meth:`fit` checks the parameters and gets the model from the process-wide cache;
    with binary ``y`` (0/1 or bool) and ``threshold=None`` it learns ``threshold_``, the cut on
    :meth:`predict` that maximises accuracy; with ``epochs > 0`` it first fine-tunes a copy of the
    model with ``st_plugins.training`` (``y`` in [0, 1]), saves it to ``output_dir`` (default: a new
    temporary folder) and uses that folder. Pickles hold no weights, only the model's name or folder.

    Args:
        model: A cross-encoder name or folder (default: the STS reranker made by ``st-plugins train-reranker``).
        threshold: Cut on :meth:`predict` scores for binary decisions; ``None`` learns it from binary ``y``
            (else the score of a zero logit: 0.5 for sigmoid models).
        batch_size: Pairs per forward pass (and per training step).
        epochs: Fine-tuning epochs in :meth:`fit` (0: use the model as is).
        learning_rate: Peak AdamW learning rate when fine-tuning.
        output_dir: Where the fine-tuned model is saved.
        random_state: Seed of fine-tuning (shuffling, dropout).
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available, else cpu).
        show_progress_bar: Show progress bars.

    Example:
        >>> pairs = [("A man eats pasta.", "A man eats food."), ("A man eats pasta.", "A car drives.")]
        >>> scorer = CrossEncoderScorer(model="all-MiniLM-L6-v2", threshold=0.5).fit(pairs)  # random head
        >>> scorer.predict(pairs).shape, scorer.predict_proba(pairs).shape
        ((2,), (2, 2))
    """

    def __init__(self, model: str | os.PathLike = "st-plugins/stsb-reranker", threshold: float | None = None,
                 batch_size: int = 32, epochs: int = 0, learning_rate: float = 2e-5,
                 output_dir: str | os.PathLike | None = None, random_state: int = 0, device: str | None = None,
                 show_progress_bar: bool = False) -> None:
        self.model = model
        self.threshold = threshold
        self.batch_size = batch_size
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.output_dir = output_dir
        self.random_state = random_state
        self.device = device
        self.show_progress_bar = show_progress_bar

    def fit(self, X: Any, y: Any = None) -> CrossEncoderScorer:
        """Check parameters and pairs, get (or fine-tune) the model, set ``threshold_``.

        Raises:
            InputTypeError: ``X`` holds something other than pairs of str (the message names the index).
            InputValueError: ``X`` is empty or not two columns, ``y`` does not match, or a parameter is invalid.
        """
        pairs = pairs_from_X(X)
        if not pairs:
            raise InputValueError("`X` must hold at least one (query, document) pair to fit; got 0.")
        y = check_y(y, len(pairs))
        check_threshold_and_epochs(self.threshold, self.epochs)
        self._run = {"batch_size": check_positive_int(self.batch_size, "batch_size"),
                     "show_progress_bar": check_bool(self.show_progress_bar, "show_progress_bar")}
        name = check_model(self.model)
        if self.epochs > 0:
            name = fine_tune(get_model("cross", name, device=self.device), pairs, y, self)
        self._load = {"model": name, "device": self.device}
        self.model_path_ = name
        self.threshold_ = self._threshold(pairs, y)
        record_input_features(self, X, 2)
        return self

    def _threshold(self, pairs: list[tuple[str, str]], y: np.ndarray | None) -> float:
        if self.threshold is not None:
            return float(self.threshold)
        if y is not None and is_binary(y):
            return best_threshold(self._predict(pairs), y)
        return float(self.cross_encoder_.activate(np.zeros((1, 1), dtype=np.float32)).ravel()[0])

    @property
    def cross_encoder_(self) -> Any:
        """The shared ``CrossEncoder`` (from the process-wide cache; loaded on first use)."""
        if not hasattr(self, "_load"):
            check_is_fitted(self)
        return get_model("cross", self._load["model"], device=self._load["device"])

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "threshold_")

    def _predict(self, pairs: list[tuple[str, str]], **kwargs: Any) -> np.ndarray:
        return np.asarray(self.cross_encoder_.predict(pairs, **self._run, **kwargs), dtype=np.float32)

    def predict(self, X: Any) -> np.ndarray:
        """Relevance scores: the model's ``predict`` (activation applied), shape ``(n,)`` for one label."""
        check_is_fitted(self)
        return self._predict(pairs_from_X(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw logits, before any activation: ``(n,)`` for one label, ``(n, num_labels)`` otherwise."""
        check_is_fitted(self)
        logits = self.cross_encoder_.predict_logits(pairs_from_X(X), **self._run)
        return logits[:, 0] if logits.shape[1] == 1 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n, 2)`` ``[1 - p, p]`` with ``p = sigmoid(logit)`` for one label; softmax over labels otherwise."""
        logits = self.decision_function(X)
        if logits.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
            return np.column_stack([1.0 - p, p])
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Binary ``y`` (0/1 or bool): accuracy of ``predict(X) >= threshold_``. Graded ``y``: Spearman's rho
        between ``predict(X)`` and ``y`` (``sample_weight`` applies to accuracy only)."""
        check_is_fitted(self)
        pairs = pairs_from_X(X)
        if y is None:
            raise InputValueError("`y` must hold one label per pair (0/1 for accuracy, graded for Spearman's rho); "
                                  "got None.")
        y = check_y(y, len(pairs))
        scores = self._predict(pairs)
        if scores.ndim != 1:
            raise InputValueError(f"`score` needs a one-label model; this one has {scores.shape[1]} labels. Use predict_proba.")
        if is_binary(y):
            return float(np.average((scores >= self.threshold_) == (y == 1), weights=sample_weight))
        if sample_weight is not None:
            raise InputValueError("`sample_weight` is supported for binary `y` only; Spearman's rho is unweighted.")
        return spearman(scores, y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # (n, 2) text pairs
        tags.target_tags.required = False  # fit(X) alone uses the model as is
        return tags
