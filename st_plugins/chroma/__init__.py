"""Chroma adapter: :class:`ChromaEmbeddingFunction`, :class:`ChromaMultimodalEmbeddingFunction` and
:func:`open_collection`.

Needs ``chromadb`` (``pip install "st-plugins[chroma]"``). Importing this package registers the
functions with Chroma under the names ``"st_plugins"`` and ``"st_plugins_multimodal"``, so a collection
created with one can be reopened in any process (after ``import st_plugins.chroma``) without passing a
function: Chroma rebuilds it from the stored config. Models come from the process-wide cache
(:func:`st_plugins.core.cache.get_model`), so rebuilding costs nothing. The modules translate
between Chroma's interfaces and the shared models; they do no model work themselves.
"""

from __future__ import annotations

from st_plugins.errors import require

require("chromadb", "chroma")

from st_plugins.chroma._collection import connect, open_collection  # noqa: E402
from st_plugins.chroma._embedding_function import VECTOR_SETTINGS, ChromaEmbeddingFunction  # noqa: E402
from st_plugins.chroma._multimodal import ChromaMultimodalEmbeddingFunction, ImageLoader  # noqa: E402

__all__ = ["ChromaEmbeddingFunction", "ChromaMultimodalEmbeddingFunction", "ImageLoader", "connect", "open_collection",
           "VECTOR_SETTINGS"]
