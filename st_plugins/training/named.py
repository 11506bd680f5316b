"""The models the recipes make, by name: plain data, no torch, no numpy.

``st-plugins train-reranker`` saves to ``home_dir() / "stsb-reranker"`` and the name
``"st-plugins/stsb-reranker"`` finds it there; ``st-plugins train-reranker --task qa`` makes
``"st-plugins/qa-reranker"``. The loaders learn these names through the ``st_plugins.models`` entry
point (pyproject.toml points it at :func:`named_models`), so the core names no product.
``home_dir()`` is ``$ST_PLUGINS_HOME``, else ``st_plugins`` in the user cache dir
(``$XDG_CACHE_HOME``, ``~/.cache``, or ``%LOCALAPPDATA%`` on Windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from st_plugins.core.runtime.store import home_dir

__all__ = ["NamedModel", "NAMED_MODELS", "STSB_RERANKER", "QA_RERANKER", "COSENT_FOLDER", "named_dir", "locate",
           "named_models", "stsb_reranker_dir", "locate_stsb_reranker", "qa_reranker_dir", "locate_qa_reranker"]

STSB_RERANKER = "st-plugins/stsb-reranker"
QA_RERANKER = "st-plugins/qa-reranker"


@dataclass(frozen=True)
class NamedModel:
    """A model a recipe makes: its folder under :func:`home_dir`, its kind, what it does and the command that makes it."""

    folder: str
    kind: str  # "bi" or "cross"
    about: str
    make: str


#: Each short name with what the loaders and their error messages need to know of it.
NAMED_MODELS = {
    STSB_RERANKER: NamedModel("stsb-reranker", "cross", "STS similarity reranker: how alike two sentences are, 0-1",
                              "st-plugins train-reranker"),
    QA_RERANKER: NamedModel("qa-reranker", "cross", "question-answer reranker: does this passage answer the question; "
                            "trained on WikiQA, research use only", "st-plugins train-reranker --task qa"),
}
#: Default output folder (under home_dir()) of ``st-plugins cosent``; it has no short name.
COSENT_FOLDER = "stsb-cosent-minilm"


def named_dir(name: str) -> Path:
    """The folder where the model called ``name`` is saved (it may not exist yet).

    Example:
        >>> named_dir("st-plugins/stsb-reranker").name
        'stsb-reranker'
    """
    return home_dir() / NAMED_MODELS[name].folder


def locate(name: str) -> Path | None:
    """The model's folder, or ``None`` until the recipe that makes it has run."""
    folder = named_dir(name)
    return folder if (folder / "config.json").is_file() else None


@dataclass(frozen=True)
class _Locator:
    """``locate(name)`` as the entry point hands it out, with the ``kind``, ``about`` and ``make`` the resolver shows."""

    name: str

    def __call__(self) -> Path | None:
        return locate(self.name)

    @property
    def kind(self) -> str:
        return NAMED_MODELS[self.name].kind

    @property
    def about(self) -> str:
        return NAMED_MODELS[self.name].about

    @property
    def make(self) -> str:
        return NAMED_MODELS[self.name].make


def named_models() -> dict[str, _Locator]:
    """The ``st_plugins.models`` entry point: each name with a callable that finds its folder.

    Example:
        >>> sorted(named_models())
        ['st-plugins/qa-reranker', 'st-plugins/stsb-reranker']
        >>> named_models()["st-plugins/qa-reranker"].make
        'st-plugins train-reranker --task qa'
    """
    return {name: _Locator(name) for name in NAMED_MODELS}


def stsb_reranker_dir() -> Path:
    """Default output folder of ``st-plugins train-reranker``."""
    return named_dir(STSB_RERANKER)


def locate_stsb_reranker() -> Path | None:
    """The trained STS reranker's folder, or ``None`` until ``st-plugins train-reranker`` has run."""
    return locate(STSB_RERANKER)


def qa_reranker_dir() -> Path:
    """Default output folder of ``st-plugins train-reranker --task qa``."""
    return named_dir(QA_RERANKER)


def locate_qa_reranker() -> Path | None:
    """The trained question-answer reranker's folder, or ``None`` until ``st-plugins train-reranker --task qa`` has run."""
    return locate(QA_RERANKER)
