"""Turn scikit-learn ``X`` (lists, arrays, pandas) into texts, text pairs or images, and back to column names.

Pure functions shared by :class:`EmbeddingTransformer`, :class:`ImageEmbeddingTransformer` and
:class:`CrossEncoderScorer`; no model work (images are decoded by the core when they are encoded).
"""

from __future__ import annotations

from typing import Any

import os
from pathlib import Path

import numpy as np

from st_plugins.core.images import is_image
from st_plugins.core.validation import as_pair_list, as_text_list
from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["as_2d_columns", "column_names", "record_input_features", "texts_from_X", "pairs_from_X", "images_from_X"]


def column_names(X: Any) -> np.ndarray | None:
    """The DataFrame's column names when they are all str (what sklearn records), else ``None``."""
    columns = getattr(X, "columns", None)
    if columns is None or not all(isinstance(c, str) for c in columns):
        return None
    return np.asarray(list(columns), dtype=object)


def record_input_features(est: Any, X: Any, n_features: int) -> None:
    """Set ``n_features_in_`` and, for a DataFrame with str column names, ``feature_names_in_``."""
    est.n_features_in_ = n_features
    names = column_names(X)
    if names is not None:
        est.feature_names_in_ = names
    elif hasattr(est, "feature_names_in_"):
        del est.feature_names_in_


def as_2d_columns(X: Any, name: str) -> tuple[Any, int | None]:
    """Return ``(X, n_columns)``: ``n_columns`` is ``None`` for 1-D input (a list, Series or 1-D array)."""
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise InputTypeError(
            f"`{name}` must hold texts; sparse input is not supported (got {type(X).__name__}). "
            "Pass a list of str, a Series or a text column."
        )
    not_array = X is None or not (hasattr(X, "__iter__") or hasattr(X, "__array__"))
    if not_array or isinstance(X, (str, bytes, set, frozenset, dict)):  # a set has no row order
        raise InputTypeError(
            f"`{name}` must be array-like (a list, numpy array or pandas object); got {type(X).__name__}. "
            "Wrap a single text in a list: [text]."
        )
    if hasattr(X, "__next__"):  # an iterator (a generator): fit_transform would read it empty the second time
        raise InputTypeError(f"`{name}` must be array-like (a list, numpy array or pandas object); got "
                             f"{type(X).__name__}, which can be read only once. Pass list(X).")
    if hasattr(X, "columns"):  # DataFrame
        return X.to_numpy(dtype=object), X.shape[1]
    if not hasattr(X, "ndim") and hasattr(X, "__array__"):
        X = np.asarray(X)
    if not hasattr(X, "ndim"):
        items = list(X)
        if items and all(isinstance(i, (list, tuple, np.ndarray)) for i in items):
            return items, len(items[0]) if len({len(i) for i in items}) == 1 else -1
        return items, None
    if X.ndim == 1:
        return X, None
    if X.ndim == 2:
        return X, X.shape[1]
    raise InputValueError(f"`{name}` must be 1-D or 2-D; got an array of shape {X.shape}.")


def _columns_error(name: str, X: Any, n_columns: int, wanted: int, what: str, fix: str) -> InputValueError:
    if 0 <= n_columns < wanted:  # scikit-learn's wording for too few columns
        got = f"{n_columns} feature(s) (shape={np.shape(X)}) while a minimum of {wanted} is required"
    else:
        got = "rows of different lengths" if n_columns < 0 else f"{n_columns} columns"
    return InputValueError(f"`{name}` must hold {what}; got {got}. {fix}")


def texts_from_X(X: Any, name: str = "X") -> list[str]:
    """Texts from a list of str, a 1-D array, a Series, or a one-column 2-D array/DataFrame.

    Example:
        >>> import numpy as np
        >>> texts_from_X(np.array([["a"], ["b"]], dtype=object))
        ['a', 'b']
        >>> texts_from_X([["a", "b"]])
        Traceback (most recent call last):
        ...
        st_plugins.errors.InputValueError: `X` must hold one text column; got 2 columns. Select the text column, e.g. df["text"], or use a ColumnTransformer.
    """
    X, n_columns = as_2d_columns(X, name)
    if n_columns is not None:
        if n_columns != 1:
            raise _columns_error(name, X, n_columns, 1, "one text column",
                                 'Select the text column, e.g. df["text"], or use a ColumnTransformer.')
        X = [row[0] for row in X]
    texts, _ = as_text_list(X, name)
    return texts


def pairs_from_X(X: Any, name: str = "X") -> list[tuple[str, str]]:
    """Text pairs from an ``(n, 2)`` array of str, a list of pairs, or a two-column DataFrame.

    Example:
        >>> pairs_from_X([("a cat", "a kitten"), ("a car", "a tree")])
        [('a cat', 'a kitten'), ('a car', 'a tree')]
    """
    X, n_columns = as_2d_columns(X, name)
    if n_columns is None and len(X):
        raise InputValueError(
            f"`{name}` must be 2-D: one row per pair, two text columns; got a 1-D sequence of "
            f"{type(X[0]).__name__}. Pass [(query, document), ...] or a two-column DataFrame."
        )
    if n_columns is not None and n_columns != 2:
        raise _columns_error(name, X, n_columns, 2, "two text columns (query, document)",
                             'Select them, e.g. df[["query", "document"]].')
    pairs, _ = as_pair_list(list(X), name)
    return pairs


def images_from_X(X: Any, name: str = "X") -> list[Any]:
    """Images from a list of PIL images, image arrays or file paths, a stack ``(n, height, width[, channels])``,
    or a 1-D array, Series or one-column 2-D array/DataFrame of them (e.g. ``df["path"]``).

    Paths (str or ``os.PathLike``) become ``Path`` objects, so the core reads them as image files whatever their
    suffix; a path that names no file is refused here, naming its index.

    Example:
        >>> images_from_X(np.zeros((2, 8, 8), dtype=np.uint8))[1].shape
        (8, 8)
        >>> images_from_X(["missing.png"])
        Traceback (most recent call last):
        ...
        st_plugins.errors.InputValueError: `X[0]` must be an image or the path of an image file; no file 'missing.png' exists.
    """
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim in (3, 4):
        items = list(X)  # a stack of images, e.g. load_digits().images
    elif isinstance(X, (list, tuple)) and X and all(_image_like(item) for item in X):
        items = list(X)  # not as_2d_columns: an image array is not a row of features
    else:
        X, n_columns = as_2d_columns(X, name)
        if n_columns is not None and n_columns != 1:
            raise _columns_error(name, X, n_columns, 1, "one column of images or image paths",
                                 'Select the column, e.g. df["path"]; wrap a single image in a list: [image].')
        items = [row[0] for row in X] if n_columns is not None else list(X)
    return [_image(item, f"{name}[{i}]") for i, item in enumerate(items)]


def _image_like(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike, np.ndarray)) or type(item).__module__.startswith("PIL.")


def _image(item: Any, where: str) -> Any:
    if isinstance(item, (str, os.PathLike)):
        path = Path(os.fspath(item))
        if not path.is_file():
            raise InputValueError(f"`{where}` must be an image or the path of an image file; no file {str(path)!r} exists.")
        return path
    if isinstance(item, np.ndarray):
        if item.dtype != object and item.ndim in (2, 3):
            return item  # checked (channels, dtype) by the core
    elif is_image(item):
        return item
    shown = repr(item) if len(repr(item)) < 40 else repr(item)[:37] + "..."
    raise InputTypeError(f"`{where}` must be an image (a PIL image, an array of shape (height, width[, 3])) or the "
                         f"path of an image file; got {type(item).__name__} ({shown}).")
