"""``open_collection``: a persistent Chroma collection that embeds with :class:`ChromaEmbeddingFunction`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import chromadb
from chromadb.errors import InvalidArgumentError, NotFoundError

from st_plugins.chroma._embedding_function import ChromaEmbeddingFunction
from st_plugins.errors import InputValueError

__all__ = ["open_collection"]


def open_collection(db: str | os.PathLike, name: str, model: str | None = None, device: str | None = None,
                    create: bool = False) -> Any:
    """Open (or, with ``create``, make) the collection ``name`` of the persistent Chroma database ``db``.

    Args:
        db: The database folder (created when ``create`` is set).
        name: The collection.
        model: Bi-encoder of a new collection (default: all-MiniLM-L6-v2); for an existing one it must
            be the model the collection was made with (``None``: whatever that was).
        device: Device to embed on (the stored setting when ``None``).
        create: Make the database and the collection when they do not exist.

    Returns:
        The ``chromadb`` collection, embedding with :class:`ChromaEmbeddingFunction`.

    Raises:
        InputValueError: No such database or collection (without ``create``), a name Chroma refuses,
            a collection made with another embedding function, or ``model`` different from the one the
            collection was made with.
    """
    if not create and not Path(db).is_dir():
        raise InputValueError(f"No Chroma database at {os.fspath(db)!r}. Create one with: st-plugins index PATH... "
                              f"--db {os.fspath(db)} (or open_collection(..., create=True)).")
    client = chromadb.PersistentClient(path=os.fspath(db))
    try:
        collection = client.get_collection(name)
    except NotFoundError:
        if not create:
            known = sorted(c.name for c in client.list_collections())
            raise InputValueError(f"No collection {name!r} in {os.fspath(db)!r}; it has {known}. "
                                  "Pass one of those names (--collection NAME).") from None
        return _create(client, name, model, device)
    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    if stored.get("name") != ChromaEmbeddingFunction.name():
        raise InputValueError(
            f"Collection {name!r} in {os.fspath(db)!r} embeds with {stored.get('name') or 'no known function'!r}, "
            f"not {ChromaEmbeddingFunction.name()!r}; pass another collection name (--collection NAME)."
        )
    if model is not None:
        wanted = ChromaEmbeddingFunction(model)
        wanted.validate_config_update(stored["config"], {"model_name": wanted.model_name})
    if device is not None:
        return client.get_collection(name, embedding_function=ChromaEmbeddingFunction(**{**stored["config"], "device": device}))
    return collection


def _create(client: Any, name: str, model: str | None, device: str | None) -> Any:
    ef = ChromaEmbeddingFunction(device=device) if model is None else ChromaEmbeddingFunction(model, device=device)
    try:
        return client.create_collection(name, embedding_function=ef)
    except InvalidArgumentError as exc:
        raise InputValueError(f"Chroma refuses the collection name {name!r}: {exc}") from None
