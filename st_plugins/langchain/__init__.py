"""LangChain adapters: embeddings, a cross-encoder, and a reranking document compressor.

Needs ``langchain-core`` (``pip install "st-plugins[langchain]"``). The classes translate between
LangChain's interfaces and the shared st_plugins models; they do no model work themselves.
Each class is imported on first access (as ``langchain_core.embeddings`` does).
"""

from __future__ import annotations

import importlib
from typing import Any

from st_plugins.errors import require

__all__ = ["LangChainEmbeddings", "LangChainCrossEncoder", "CrossEncoderReranker"]

_LAZY = {
    "LangChainEmbeddings": "st_plugins.langchain._embeddings",
    "LangChainCrossEncoder": "st_plugins.langchain._cross_encoder",
    "CrossEncoderReranker": "st_plugins.langchain._rerank",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        require("langchain_core", "langchain")
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'st_plugins.langchain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
