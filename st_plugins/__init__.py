"""st_plugins: sentence-transformers-style bi-encoders and cross-encoders for Chroma, scikit-learn
and LangChain, run on ONNX Runtime by default and trained on torch + transformers.

Nothing heavy is imported here: ``SentenceTransformer``, ``CrossEncoder`` and friends load their
runtime on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from st_plugins import errors as _errors
from st_plugins.errors import (
    BackendError,
    DataNotFoundError,
    InputTypeError,
    InputValueError,
    MissingDependencyError,
    ModelFormatError,
    ModelNotFoundError,
    StPluginsError,
    StoreUnavailableError,
    UnsafeCheckpointError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "SentenceTransformer",
    "CrossEncoder",
    "SimilarityFunction",
    "get_model",
    "util",
    *_errors.__all__,  # StPluginsError first, then each error class (drawn in st_plugins.errors)
]

_LAZY = {
    "SentenceTransformer": ("st_plugins.core.bi_encoder", "SentenceTransformer"),
    "CrossEncoder": ("st_plugins.core.cross_encoder", "CrossEncoder"),
    "SimilarityFunction": ("st_plugins.core.similarity", "SimilarityFunction"),
    "get_model": ("st_plugins.core.cache", "get_model"),
    "util": ("st_plugins.util", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        loaded = importlib.import_module(module)
        value = loaded if attr is None else getattr(loaded, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'st_plugins' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
