"""Where trained models live, and the short name ``"st-plugins/stsb-reranker"``.

:mod:`st_plugins.core.resolve` registers the name at import, so every loader knows it; this module
imports nothing heavy (no torch, no numpy).
The folder is ``$ST_PLUGINS_HOME/stsb-reranker`` when ``ST_PLUGINS_HOME`` is set, else
``stsb-reranker`` in the user cache dir (``$XDG_CACHE_HOME/st_plugins``, ``~/.cache/st_plugins``,
or ``%LOCALAPPDATA%\\st_plugins`` on Windows).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["STSB_RERANKER", "home_dir", "stsb_reranker_dir", "locate_stsb_reranker"]

STSB_RERANKER = "st-plugins/stsb-reranker"


def home_dir() -> Path:
    """The folder holding models made by st_plugins (``$ST_PLUGINS_HOME`` or the user cache dir)."""
    env = os.environ.get("ST_PLUGINS_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "st_plugins"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "st_plugins"


def stsb_reranker_dir() -> Path:
    """Default output folder of ``st-plugins train-reranker``.

    Example:
        >>> stsb_reranker_dir().name
        'stsb-reranker'
    """
    return home_dir() / "stsb-reranker"


def locate_stsb_reranker() -> Path | None:
    """The trained STS reranker's folder, or ``None`` until ``st-plugins train-reranker`` has run."""
    folder = stsb_reranker_dir()
    return folder if (folder / "config.json").is_file() else None

