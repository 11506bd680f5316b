"""``EmbeddingTransformer``: texts in, sentence embeddings out, as a native scikit-learn transformer."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from st_plugins.core.cache import get_model
from st_plugins.core.validation import check_positive_int
from st_plugins.errors import InputTypeError, InputValueError
from st_plugins.sklearn._inputs import record_input_features, texts_from_X

__all__ = ["EmbeddingTransformer"]


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputValueError(f"`{name}` must be True or False; got {value!r}.")
    return bool(value)


def check_model(value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise InputTypeError(f"`model` must be a model name or folder path; got {type(value).__name__}.")
    return os.fspath(value)


class EmbeddingTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Embed texts with a bi-encoder; one row of ``X`` (a text) becomes one float32 vector.

    ``X`` may be a list of str, a 1-D array, a pandas Series, or a one-column 2-D array or
    DataFrame (what ``ColumnTransformer`` passes for ``["text"]``). Parameters take effect at
    :meth:`fit`, which checks them and gets the model from the process-wide cache (one load per
    process, however many clones a grid search makes). A pickled transformer holds no weights:
    it finds the model again, by name or path, on first use.

    Args:
        model: A registered name (``"all-MiniLM-L6-v2"``, the packaged default) or a model folder.
        batch_size: Texts per forward pass.
        normalize_embeddings: L2-normalize the vectors (for cosine geometry, e.g. before KMeans).
        prompt_name: Key of the model's ``prompts`` whose text is prepended (e.g. ``"query"``).
        truncate_dim: Keep only the first ``truncate_dim`` dimensions (Matryoshka models).
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available, else cpu).
        show_progress_bar: Show a progress bar while encoding.

    Example:
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.linear_model import LogisticRegression
        >>> pipe = make_pipeline(EmbeddingTransformer(), LogisticRegression())
        >>> pipe.fit(["I love it", "great stuff", "I hate it", "awful stuff"], [1, 1, 0, 0]).predict(["lovely"])
        array([1])
        >>> pipe[0].get_feature_names_out()[:2]
        array(['embeddingtransformer0', 'embeddingtransformer1'], dtype=object)
    """

    def __init__(self, model: str | os.PathLike = "all-MiniLM-L6-v2", batch_size: int = 32,
                 normalize_embeddings: bool = False, prompt_name: str | None = None,
                 truncate_dim: int | None = None, device: str | None = None,
                 show_progress_bar: bool = False) -> None:
        self.model = model
        self.batch_size = batch_size
        self.normalize_embeddings = normalize_embeddings
        self.prompt_name = prompt_name
        self.truncate_dim = truncate_dim
        self.device = device
        self.show_progress_bar = show_progress_bar

    def fit(self, X: Any, y: Any = None) -> EmbeddingTransformer:
        """Check the parameters and ``X``, and get the model (nothing is learned from ``X``).

        Args:
            X: Texts (see the class docstring for the accepted shapes).
            y: Ignored.

        Returns:
            self.

        Raises:
            InputTypeError: ``X`` holds something other than str (the message names the index).
            InputValueError: ``X`` is empty or has several columns, or a parameter is out of range.
        """
        if not self._rows(X):
            raise InputValueError(f"`X` must hold at least one {self._item} to fit; got 0. Pass a non-empty list.")
        load = {"model": check_model(self.model), "device": self.device}
        encoder = get_model("bi", load["model"], device=load["device"])
        self._check_encoder(encoder)
        dim = encoder.get_embedding_dimension()
        if self.truncate_dim is not None and check_positive_int(self.truncate_dim, "truncate_dim") > dim:
            raise InputValueError(f"`truncate_dim` must be at most the model's dimension {dim}; got {self.truncate_dim}.")
        self._encode = {"batch_size": check_positive_int(self.batch_size, "batch_size"),
                        "normalize_embeddings": check_bool(self.normalize_embeddings, "normalize_embeddings"),
                        "show_progress_bar": check_bool(self.show_progress_bar, "show_progress_bar"),
                        "prompt_name": getattr(self, "prompt_name", None), "truncate_dim": self.truncate_dim}
        self._load, self._n_features_out = load, min(dim, self.truncate_dim or dim)
        record_input_features(self, X, 1)
        return self

    _item = "text"
    _rows = staticmethod(texts_from_X)  # X -> the list the model encodes

    def _check_encoder(self, encoder: Any) -> None:
        if self.prompt_name is not None and self.prompt_name not in encoder.prompts:
            raise InputValueError(f"`prompt_name` must be one of the model's prompts {sorted(encoder.prompts)}; "
                                  f"got {self.prompt_name!r}. Leave it None for no prompt.")

    @property
    def encoder_(self) -> Any:
        """The shared ``SentenceTransformer`` (from the process-wide cache; loaded on first use)."""
        check_is_fitted(self)
        return get_model("bi", self._load["model"], device=self._load["device"])

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_n_features_out")

    def transform(self, X: Any) -> np.ndarray:
        """Embed each text.

        Args:
            X: Texts (see the class docstring for the accepted shapes).

        Returns:
            A float32 array of shape ``(n_texts, n_features_out)``; a DataFrame after
            ``set_output(transform="pandas")``.

        Raises:
            NotFittedError: Called before :meth:`fit`.
            InputTypeError: ``X`` holds something other than str (the message names the index).
        """
        check_is_fitted(self)
        return np.asarray(self.encoder_.encode(self._rows(X), **self._encode), dtype=np.float32)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # texts: a list, 1-D array, Series or one-column 2-D
        tags.transformer_tags.preserves_dtype = []  # text in, float32 out
        return tags
