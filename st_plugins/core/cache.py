"""A process-wide, thread-safe model cache keyed by the full load configuration.

Every adapter asks here, so one process holds one instance per (kind, model, settings), and so one
runtime (graph session, tokenizer) per model; the instances are safe to share between threads.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from typing import Any

from st_plugins.errors import InputValueError

__all__ = ["get_model", "load_counts", "clear_cache", "cache_key"]

_MODELS: dict[str, Any] = {}
_KEY_LOCKS: dict[str, threading.Lock] = {}
_LOCK = threading.Lock()
_LOADS: Counter = Counter()


def _canonical(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # torch.dtype, torch.device, enums


def cache_key(kind: str, model: str | os.PathLike, **settings: Any) -> str:
    """A stable string key; settings equal to ``None`` are dropped so defaults match.

    Example:
        >>> cache_key("bi", "m", device="cpu", revision=None) == cache_key("bi", "m", device="cpu")
        True
    """
    name = os.fspath(model)
    if os.path.isdir(name):
        name = os.path.realpath(name)
    kept = {k: v for k, v in settings.items() if v is not None}
    return json.dumps([kind, name, _canonical(kept)], sort_keys=True)


def _default_device() -> str:
    from st_plugins.core.encoder import default_device

    return default_device()


def get_model(kind: str, model: str | os.PathLike, **settings: Any) -> Any:
    """Return the shared ``SentenceTransformer`` (``kind="bi"``) or ``CrossEncoder`` (``kind="cross"``).

    The first call for a key loads the model (once, even when many threads ask at the same time);
    later calls return the same instance.
    """
    settings.setdefault("device", None)
    if settings["device"] is None:
        settings["device"] = _default_device()
    key = cache_key(kind, model, **settings)
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:
        with _LOCK:
            if key in _MODELS:
                return _MODELS[key]
        instance = _load(kind, model, settings)
        with _LOCK:
            _MODELS[key] = instance
            _LOADS[key] += 1
        return instance


def _load(kind: str, model: str | os.PathLike, settings: dict[str, Any]) -> Any:
    if kind == "bi":
        from st_plugins.core.bi_encoder import SentenceTransformer as cls
    elif kind == "cross":
        from st_plugins.core.cross_encoder import CrossEncoder as cls
    else:
        raise InputValueError(f"`kind` must be 'bi' or 'cross'; got {kind!r}.")
    return cls(model, **settings)


def load_counts() -> dict[str, int]:
    """How many times each key was loaded in this process (1 each, if the cache works)."""
    with _LOCK:
        return dict(_LOADS)


def clear_cache() -> None:
    """Forget every cached model (the next request loads again)."""
    with _LOCK:
        _MODELS.clear()
        _KEY_LOCKS.clear()
