"""The cross-encoder under the module path sentence-transformers uses (``sentence_transformers.cross_encoder``).

``from st_plugins.cross_encoder import CrossEncoder`` is the same class as ``st_plugins.CrossEncoder``;
:mod:`st_plugins.cross_encoder.evaluation` holds the cross-encoder evaluators. Nothing heavy is
imported here.

Example:
    >>> from st_plugins.cross_encoder import CrossEncoder
    >>> import st_plugins
    >>> CrossEncoder is st_plugins.CrossEncoder
    True
"""

from __future__ import annotations

from typing import Any

__all__ = ["CrossEncoder"]


def __getattr__(name: str) -> Any:
    if name == "CrossEncoder":
        from st_plugins.core.cross_encoder import CrossEncoder

        globals()[name] = CrossEncoder
        return CrossEncoder
    raise AttributeError(f"module 'st_plugins.cross_encoder' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
