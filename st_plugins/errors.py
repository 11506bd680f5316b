"""One exception hierarchy for st_plugins.

Every error the library raises on purpose derives from :class:`StPluginsError`, and also from the
matching built-in, so callers may catch either::

    StPluginsError
    ├── InputTypeError(StPluginsError, TypeError)        bad input type (names the index)
    ├── InputValueError(StPluginsError, ValueError)      bad argument value (says what is allowed)
    ├── ModelNotFoundError(StPluginsError, OSError)      nothing found; lists every place tried
    ├── ModelFormatError(StPluginsError, ValueError)     a model folder we cannot read
    ├── UnsafeCheckpointError(StPluginsError, ValueError)  pickle weights or remote code refused (names the opt-in)
    ├── MissingDependencyError(StPluginsError, ImportError)  names the extra to install
    ├── BackendError(StPluginsError, RuntimeError)       an inference backend or graph build failed
    ├── DataNotFoundError(StPluginsError, FileNotFoundError)  evaluation data missing; says where it looked
    └── StoreUnavailableError(StPluginsError, ConnectionError)  a vector store could not be reached or written
"""

from __future__ import annotations

__all__ = [
    "StPluginsError",
    "InputTypeError",
    "InputValueError",
    "ModelNotFoundError",
    "ModelFormatError",
    "UnsafeCheckpointError",
    "MissingDependencyError",
    "BackendError",
    "DataNotFoundError",
    "StoreUnavailableError",
]


class StPluginsError(Exception):
    """Base class of every error raised on purpose by st_plugins."""


class InputTypeError(StPluginsError, TypeError):
    """An input has the wrong type; the message names the offending index and type."""


class InputValueError(StPluginsError, ValueError):
    """An argument has a value outside what is allowed; the message says what is allowed."""


class ModelNotFoundError(StPluginsError, OSError):
    """No model folder was found; the message lists every place that was tried."""


class ModelFormatError(StPluginsError, ValueError):
    """A model folder exists but its files are missing or inconsistent."""


class UnsafeCheckpointError(StPluginsError, ValueError):
    """Unsafe model content was refused: a pickle checkpoint without ``allow_pickle``, or model code
    (``auto_map``) without ``trust_remote_code``; the message names the file and the opt-in."""


class MissingDependencyError(StPluginsError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class BackendError(StPluginsError, RuntimeError):
    """An inference backend failed: a graph could not be built, exported or run; the message says which."""


class DataNotFoundError(StPluginsError, FileNotFoundError):
    """Evaluation data is missing; the message names the path looked at and how to point at the data."""


class StoreUnavailableError(StPluginsError, ConnectionError):
    """A vector store (a Chroma server) could not be reached or refused a write; the message names it and what to do.

    Nothing is lost: writes are idempotent (content-hash ids), so re-running the same job once the store
    is back adds exactly what is missing.
    """


def require(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra.

    Args:
        module: Dotted module name to import.
        extra: Name of the st-plugins extra that provides it.

    Returns:
        The imported module.

    Example:
        >>> require("json", "core").__name__
        'json'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"`{module}` is needed for this feature but is not installed. "
            f'Install it with: pip install "st-plugins[{extra}]"'
        ) from exc
