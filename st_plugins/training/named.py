"""The models the recipes make, by name: plain data, no torch, no numpy.

``st-plugins train-reranker`` saves to ``home_dir() / "stsb-reranker"`` and the name
``"st-plugins/stsb-reranker"`` finds it there. The loaders learn these names through the
``st_plugins.models`` entry point (pyproject.toml points it at :func:`named_models`), so the core
names no product. ``home_dir()`` is ``$ST_PLUGINS_HOME``, else ``st_plugins`` in the user cache dir
(``$XDG_CACHE_HOME``, ``~/.cache``, or ``%LOCALAPPDATA%`` on Windows).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from st_plugins.core.runtime.store import home_dir

__all__ = ["NAMED_MODELS", "STSB_RERANKER", "COSENT_FOLDER", "named_dir", "locate", "named_models",
           "stsb_reranker_dir", "locate_stsb_reranker"]

STSB_RERANKER = "st-plugins/stsb-reranker"
#: Each model name with its folder under :func:`~st_plugins.core.runtime.store.home_dir`.
NAMED_MODELS = {STSB_RERANKER: "stsb-reranker"}
#: Default output folder (under home_dir()) of ``st-plugins cosent``; it has no short name.
COSENT_FOLDER = "stsb-cosent-minilm"


def named_dir(name: str) -> Path:
    """The folder where the model called ``name`` is saved (it may not exist yet).

    Example:
        >>> named_dir("st-plugins/stsb-reranker").name
        'stsb-reranker'
    """
    return home_dir() / NAMED_MODELS[name]


def locate(name: str) -> Path | None:
    """The model's folder, or ``None`` until the recipe that makes it has run."""
    folder = named_dir(name)
    return folder if (folder / "config.json").is_file() else None


def named_models() -> dict[str, Callable[[], Path | None]]:
    """The ``st_plugins.models`` entry point: each name with a function that finds its folder.

    Example:
        >>> sorted(named_models())
        ['st-plugins/stsb-reranker']
    """
    return {name: functools.partial(locate, name) for name in NAMED_MODELS}


def stsb_reranker_dir() -> Path:
    """Default output folder of ``st-plugins train-reranker``."""
    return named_dir(STSB_RERANKER)


def locate_stsb_reranker() -> Path | None:
    """The trained STS reranker's folder, or ``None`` until ``st-plugins train-reranker`` has run."""
    return locate(STSB_RERANKER)
