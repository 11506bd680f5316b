"""``open_collection``: a Chroma collection (a database folder or a ``chroma run`` server) that embeds
with :class:`ChromaEmbeddingFunction`, or :class:`ChromaMultimodalEmbeddingFunction` (and an :class:`ImageLoader`
for ``uris``) when its model has an image tower; ``connect`` gives the client of either."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
from chromadb.errors import InvalidArgumentError, NotFoundError

from st_plugins.chroma._embedding_function import ChromaEmbeddingFunction
from st_plugins.chroma._multimodal import ChromaMultimodalEmbeddingFunction, ImageLoader
from st_plugins.errors import InputValueError, StoreUnavailableError

__all__ = ["connect", "is_multimodal", "open_collection", "parse_url"]

#: Our functions by the name Chroma stores in a collection's configuration.
_FUNCTIONS = {cls.name(): cls for cls in (ChromaEmbeddingFunction, ChromaMultimodalEmbeddingFunction)}


def parse_url(url: str) -> tuple[str, int, bool]:
    """``(host, port, ssl)`` of a Chroma server URL such as ``http://127.0.0.1:8000``.

    Example:
        >>> parse_url("http://127.0.0.1:8000"), parse_url("https://chroma.example.org")
        (('127.0.0.1', 8000, False), ('chroma.example.org', 443, True))
    """
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise InputValueError(f"A Chroma server URL must look like http://HOST:PORT (or https://...); got {url!r}.")
    try:
        port = parts.port
    except ValueError:
        raise InputValueError(f"The port of the Chroma server URL {url!r} is not a number from 1 to 65535.") from None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80), parts.scheme == "https"


def connect(db: str | os.PathLike | None = None, url: str | None = None, create: bool = False) -> Any:
    """A Chroma client: a persistent database folder ``db`` or a ``chroma run`` server at ``url`` (one of the two).

    Raises:
        InputValueError: Neither or both given; no database folder at ``db`` (without ``create``); a bad URL.
        StoreUnavailableError: No Chroma server answers at ``url``.
    """
    if (db is None) == (url is None):
        raise InputValueError(f"Pass either a database folder (`db`, --db DIR) or a server URL (`url`, --chroma-url URL); "
                              f"got db={db!r} and url={url!r}.")
    if url is not None:
        host, port, ssl = parse_url(url)
        try:
            return chromadb.HttpClient(host=host, port=port, ssl=ssl)
        except Exception as exc:  # chromadb raises a bare ValueError when nothing answers
            raise StoreUnavailableError(f"No Chroma server answers at {url} ({exc}). Start one (e.g. `chroma run --path DIR "
                                        f"--port {port}`) or pass the URL of a running one.") from None
    if not isinstance(db, (str, os.PathLike)) or "\x00" in os.fspath(db):
        raise InputValueError(f"`db` (--db) must be a folder path without NUL characters; got {db!r}.")
    if not create and not Path(db).is_dir():
        raise InputValueError(f"No Chroma database at {os.fspath(db)!r}. Create one with: st-plugins index PATH... "
                              f"--db {os.fspath(db)} (or open_collection(..., create=True)).")
    return chromadb.PersistentClient(path=os.fspath(db))


def open_collection(db: str | os.PathLike | None, name: str, model: str | None = None, device: str | None = None,
                    create: bool = False, url: str | None = None) -> Any:
    """Open (or, with ``create``, make) the collection ``name`` of the Chroma database ``db`` or server ``url``.

    Args:
        db: The database folder (created when ``create`` is set), or ``None`` with ``url``.
        name: The collection.
        model: Bi-encoder of a new collection (default: all-MiniLM-L6-v2); for an existing one it must
            be the model the collection was made with (``None``: whatever that was).
        device: Device to embed on (the stored setting when ``None``).
        create: Make the database and the collection when they do not exist.
        url: A ``chroma run`` server (``http://HOST:PORT``) instead of a folder.

    Returns:
        The ``chromadb`` collection, embedding with :class:`ChromaEmbeddingFunction`, or with
        :class:`ChromaMultimodalEmbeddingFunction` and an :class:`ImageLoader` for ``uris`` when the model has an
        image tower (a new collection) or the collection was made so.

    Raises:
        InputValueError: No such database or collection (without ``create``), a name Chroma refuses,
            a collection made with another embedding function, or ``model`` different from the one the
            collection was made with.
        StoreUnavailableError: No Chroma server answers at ``url``.
    """
    if not isinstance(name, str) or not name.isascii():  # Chroma's names are ASCII; others fail deep inside it
        raise InputValueError(f"A Chroma collection name must be 3-512 ASCII letters, digits, '.', '_' or '-'; "
                              f"got {name!r}. Pass another name (--collection NAME).")
    client = connect(db, url, create=create)
    where = url if url is not None else os.fspath(db)
    try:
        collection = client.get_collection(name)
    except NotFoundError:
        if not create:
            known = sorted(c.name for c in client.list_collections())
            raise InputValueError(f"No collection {name!r} in {where!r}; it has {known}. "
                                  "Pass one of those names (--collection NAME).") from None
        return _create(client, name, model, device)
    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    function = _FUNCTIONS.get(stored.get("name"))
    if function is None:
        raise InputValueError(
            f"Collection {name!r} in {where!r} embeds with {stored.get('name') or 'no known function'!r}, "
            f"not one of {sorted(_FUNCTIONS)}; pass another collection name (--collection NAME)."
        )
    if model is not None:
        wanted = function(model)
        wanted.validate_config_update(stored["config"], {"model_name": wanted.model_name})
    if device is None and function is ChromaEmbeddingFunction:
        return collection
    chosen = {} if device is None else {"embedding_function": function(**{**stored["config"], "device": device})}
    return client.get_collection(name, data_loader=_loader(function), **chosen)


def is_multimodal(collection: Any) -> bool:
    """Whether ``collection`` embeds images too (it was made with :class:`ChromaMultimodalEmbeddingFunction`)."""
    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    return stored.get("name") == ChromaMultimodalEmbeddingFunction.name()


def _loader(function: type) -> ImageLoader | None:
    return ImageLoader() if function is ChromaMultimodalEmbeddingFunction else None


def _create(client: Any, name: str, model: str | None, device: str | None) -> Any:
    ef = ChromaEmbeddingFunction(device=device) if model is None else ChromaEmbeddingFunction(model, device=device)
    if "image" in getattr(ef.model, "modalities", ("text",)):
        ef = ChromaMultimodalEmbeddingFunction(**ef.get_config())
    try:
        return client.create_collection(name, embedding_function=ef, data_loader=_loader(type(ef)))
    except InvalidArgumentError as exc:
        raise InputValueError(f"Chroma refuses the collection name {name!r}: {exc}") from None
