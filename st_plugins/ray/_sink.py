"""``ChromaDatasink``: write a Ray Dataset of (document, vector) rows into a Chroma collection, idempotently.

Rows are upserted under content-hash ids (:func:`st_plugins.indexing.content_id`, or an id column):
a retried write task, a restarted actor or a whole job run again writes the same ids with the same
vectors, so nothing is ever duplicated, and whatever a failed run did not write is written by the next.

Two targets:

- a ``chroma run`` server (``url=``): every write task connects to it itself, from any node;
- a database folder (``path=``): Chroma's embedded store is not safe for several processes, so one
  writer actor, pinned to the driver's node, owns the folder and the write tasks send it their rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import ray
from ray.data import Datasink
from ray.data.block import BlockAccessor

from st_plugins.errors import InputTypeError, InputValueError, StoreUnavailableError

__all__ = ["ChromaDatasink"]


def _ef_config(embedding_function: Any) -> dict[str, Any] | None:
    from st_plugins.chroma import ChromaEmbeddingFunction

    if embedding_function is None:
        return None
    if not isinstance(embedding_function, ChromaEmbeddingFunction):
        raise InputTypeError("`embedding_function` must be an st_plugins.chroma.ChromaEmbeddingFunction (the one "
                             f"queries will embed with); got {type(embedding_function).__name__}.")
    return embedding_function.get_config()


def _open(client: Any, name: str, ef_config: dict[str, Any] | None, where: str) -> Any:
    """Get or create ``name``; an existing collection must embed with ``ef_config``'s vector settings.

    ``ef_config`` ``None``: the collection's own function, or all-MiniLM-L6-v2 for a new collection.
    """
    from chromadb.errors import NotFoundError

    from st_plugins.chroma import ChromaEmbeddingFunction

    from chromadb.errors import InvalidArgumentError

    try:
        collection = client.get_collection(name)
    except NotFoundError:
        ef = ChromaEmbeddingFunction() if ef_config is None else ChromaEmbeddingFunction.build_from_config(ef_config)
        try:
            return client.get_or_create_collection(name, embedding_function=ef)
        except InvalidArgumentError as exc:
            raise InputValueError(f"Chroma refuses the collection name {name!r}: {exc}") from None
    except InvalidArgumentError as exc:
        raise InputValueError(f"Chroma refuses the collection name {name!r}: {exc}") from None
    stored = (collection.configuration_json or {}).get("embedding_function") or {}
    if stored.get("name") != ChromaEmbeddingFunction.name():
        raise InputValueError(f"Collection {name!r} at {where} embeds with {stored.get('name') or 'no known function'!r}, "
                              f"not {ChromaEmbeddingFunction.name()!r}; write into another collection.")
    if ef_config is not None:
        ChromaEmbeddingFunction.build_from_config(ef_config).validate_config_update(stored.get("config") or {}, ef_config)
    return collection


def _stored_config(collection: Any) -> dict[str, Any]:
    return dict(collection.configuration_json["embedding_function"]["config"])


class _Rows:
    """One chunk of rows for Chroma: ids, documents, embeddings, metadatas (ids unique)."""

    def __init__(self, ids: list[str], documents: list[str], embeddings: np.ndarray, metadatas: list[dict] | None):
        self.ids, self.documents, self.embeddings, self.metadatas = ids, documents, embeddings, metadatas

    def upsert(self, collection: Any) -> None:
        collection.upsert(ids=self.ids, documents=self.documents, embeddings=self.embeddings, metadatas=self.metadatas)


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class _FolderWriter:
    """The one process that opens an embedded Chroma folder during a Ray write."""

    def __init__(self, path: str, name: str, ef_config: dict[str, Any] | None) -> None:
        self.path, self.name, self.ef_config, self._collection = path, name, ef_config, None

    @property
    def collection(self) -> Any:
        """Opened on the first call, so an error (a refused setting) reaches the caller as that error."""
        if self._collection is None:
            import chromadb

            import st_plugins.chroma  # noqa: F401  (registers the function, so the collection can be reopened)

            self._collection = _open(chromadb.PersistentClient(path=self.path), self.name, self.ef_config,
                                     repr(self.path))
        return self._collection

    def upsert(self, rows: _Rows) -> int:
        rows.upsert(self.collection)
        return len(rows.ids)

    def present(self, ids: list[str]) -> list[str]:
        return self.collection.get(ids=ids, include=[])["ids"]

    def count(self) -> int:
        return self.collection.count()

    def config(self) -> dict[str, Any]:
        return _stored_config(self.collection)


class ChromaDatasink(Datasink):
    """Write rows (a document column and a vector column) into a Chroma collection; for ``Dataset.write_datasink``.

    Args:
        collection: The collection name (created when missing, embedding with ``embedding_function``).
        path: An embedded Chroma database folder (on the driver's node), or
        url: a ``chroma run`` server, ``http://HOST:PORT`` (one of the two).
        embedding_function: The :class:`~st_plugins.chroma.ChromaEmbeddingFunction` the collection
            queries with; it must be the one that made the vectors. An existing collection made with
            other vector settings is refused. ``None``: the collection's own (all-MiniLM-L6-v2 for a new one);
            :meth:`embedding_function` tells which.
        document_column: The column of documents (str).
        embedding_column: The column of vectors (e.g. from :class:`~st_plugins.ray.EmbedBatch`).
        id_column: A column of ids (str); ``None`` (default): :func:`~st_plugins.indexing.content_id` of
            the document, so the same text always gets the same id.
        metadata_columns: Columns stored as each row's metadata (str, int, float or bool values; a
            missing value (None or NaN) is left out), or a ``{column: metadata key}`` mapping to store them
            under other keys.
        metadata_json_column: A column holding each row's metadata as a JSON object (str), for metadata
            whose keys differ between rows (Ray's numpy batches turn a column with gaps into floats).
        batch_size: Rows per upsert call.

    Writes are upserts: re-running a job, or Ray retrying a task, never duplicates a row.

    Raises:
        InputValueError: Both or neither of ``path`` and ``url``; a bad URL or setting.
        StoreUnavailableError: (when writing) the server could not be reached; re-run once it is back.
    """

    def __init__(
        self,
        collection: str,
        *,
        path: str | os.PathLike | None = None,
        url: str | None = None,
        embedding_function: Any = None,
        document_column: str = "text",
        embedding_column: str = "embedding",
        id_column: str | None = None,
        metadata_columns: Sequence[str] | Mapping[str, str] = (),
        metadata_json_column: str | None = None,
        batch_size: int = 256,
    ) -> None:
        from st_plugins.chroma._collection import parse_url
        from st_plugins.core.validation import check_positive_int

        if (path is None) == (url is None):
            raise InputValueError(f"Pass either `path` (a Chroma database folder) or `url` (a `chroma run` server); "
                                  f"got path={path!r} and url={url!r}.")
        if url is not None:
            parse_url(url)
        for value, name in ((collection, "collection"), (document_column, "document_column"),
                            (embedding_column, "embedding_column")):
            if not isinstance(value, str) or not value:
                raise InputTypeError(f"`{name}` must be a non-empty str; got {value!r}.")
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise InputTypeError(f"`path` must be a folder (str or path); got {type(path).__name__}.")
        if metadata_json_column is not None and (not isinstance(metadata_json_column, str) or not metadata_json_column):
            raise InputTypeError(f"`metadata_json_column` must be a column name (str) or None; got {metadata_json_column!r}.")
        if id_column is not None and (not isinstance(id_column, str) or not id_column):
            raise InputTypeError(f"`id_column` must be a column name (str) or None; got {id_column!r}.")
        pairs = metadata_columns.items() if isinstance(metadata_columns, Mapping) else (
            [] if isinstance(metadata_columns, str) else [(c, c) for c in metadata_columns])
        if isinstance(metadata_columns, str) or not all(isinstance(c, str) and c and isinstance(k, str) and k
                                                        for c, k in pairs):
            raise InputTypeError("`metadata_columns` must be a list of column names or a {column: key} dict of str; "
                                 f"got {metadata_columns!r}.")
        self.collection = collection
        self.path = None if path is None else os.path.abspath(os.fspath(path))
        self.url = url
        self.ef_config = _ef_config(embedding_function)
        self.document_column, self.embedding_column, self.id_column = document_column, embedding_column, id_column
        self.metadata_columns = dict(pairs)
        self.metadata_json_column = metadata_json_column
        self.rows_in_collection: int | None = None  # set when a write completes
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self._writer_name = f"st_plugins_chroma_writer_{uuid.uuid4().hex}"
        self._writer_handle: Any = None  # held by the driver: Ray ends an actor once no handle to it is left

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_writer_handle": None}  # write tasks find the writer by its name

    @property
    def where(self) -> str:
        return self.url if self.url is not None else repr(self.path)

    # ------------------------------------------------------------------ driver side
    def on_write_start(self, schema: Any = None) -> None:
        """Make (or check) the collection before any row is written, on the driver."""
        self.count()

    def on_write_complete(self, write_result: Any) -> None:
        self.rows_in_collection = self.count()
        self.close()

    def on_write_failed(self, error: Exception) -> None:
        self.close()

    def count(self) -> int:
        """How many rows the collection holds (made, or checked against ``embedding_function``, on first use)."""
        if self.url is not None:
            collection = self._server_collection()
            with self._unavailable("Counting"):
                return collection.count()
        return self._call(self._writer().count.remote())

    def embedding_function(self) -> Any:
        """The collection's :class:`~st_plugins.chroma.ChromaEmbeddingFunction` (the one to embed rows with)."""
        from st_plugins.chroma import ChromaEmbeddingFunction

        if self.url is not None:
            config = _stored_config(self._server_collection())
        else:
            config = self._call(self._writer().config.remote())
        return ChromaEmbeddingFunction.build_from_config(config)

    def present(self, ids: Sequence[str], chunk: int = 1000) -> set[str]:
        """Which of ``ids`` the collection already holds (to embed only the rest)."""
        ids, found = list(ids), set()
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            if self.url is not None:
                collection = self._server_collection()
                with self._unavailable("Reading"):
                    found.update(collection.get(ids=part, include=[])["ids"])
            else:
                found.update(self._call(self._writer().present.remote(part)))
        return found

    def close(self) -> None:
        """End the folder's writer process (a database folder only), so this process or another may open it."""
        if self.path is None:
            return
        handle, self._writer_handle = self._writer_handle, None
        if handle is None:
            return
        ray.kill(handle, no_restart=True)
        import time

        for _ in range(200):  # until Ray has let the name go, so the folder is closed and the name reusable
            try:
                ray.get_actor(self._writer_name)
            except ValueError:
                return
            time.sleep(0.05)

    def _writer(self) -> Any:
        """The folder's writer actor: started on this node on first use, then found by name from any task."""
        if self._writer_handle is None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
            self._writer_handle = _FolderWriter.options(name=self._writer_name, scheduling_strategy=here).remote(
                self.path, self.collection, self.ef_config)
        return self._writer_handle

    def _server_collection(self) -> Any:
        from st_plugins.chroma import connect

        with self._unavailable("Opening"):
            return _open(connect(url=self.url), self.collection, self.ef_config, self.url)

    def _unavailable(self, what: str) -> Any:
        """A context turning a transport failure into :class:`StoreUnavailableError` naming the server."""
        import contextlib

        sink = self

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except Exception as exc:
                from st_plugins.indexing import is_transport_error

                if not is_transport_error(exc):
                    raise
                raise StoreUnavailableError(
                    f"{what} collection {sink.collection!r} at {sink.where} failed: {type(exc).__name__}: {exc}. Rows "
                    "already written stay (each under its content id); start the server again and re-run the same "
                    "job: it adds exactly what is missing.") from None
        return guard()

    @staticmethod
    def _call(ref: Any) -> Any:
        try:
            return ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
            raise _unwrap(exc) from None

    # ------------------------------------------------------------------ write tasks
    def write(self, blocks: Iterable[Any], ctx: Any) -> dict[str, int]:
        """Upsert every row of ``blocks``; returns ``{"rows": n}``."""
        target = self._target()
        rows = 0
        for block in blocks:
            table = BlockAccessor.for_block(block).to_arrow()
            for start in range(0, table.num_rows, self.batch_size):
                chunk = self._rows(table.slice(start, self.batch_size))
                from chromadb.errors import InvalidArgumentError

                try:
                    with self._unavailable(f"Writing {len(chunk.ids)} rows into"):
                        target(chunk)
                except InvalidArgumentError as exc:  # e.g. vectors of another dimension than the collection's
                    raise InputValueError(f"Chroma refuses {len(chunk.ids)} rows for collection {self.collection!r} "
                                          f"at {self.where}: {exc}. Embed with the collection's model.") from None
                rows += len(chunk.ids)
        return {"rows": rows}

    def _target(self) -> Any:
        if self.url is not None:
            collection = self._server_collection()
            return lambda rows: rows.upsert(collection)
        writer = ray.get_actor(self._writer_name)
        return lambda rows: self._call(writer.upsert.remote(rows))

    def _rows(self, table: Any) -> _Rows:
        from st_plugins.indexing import content_id

        columns = set(table.column_names)
        wanted = [self.document_column, self.embedding_column, *([self.id_column] if self.id_column else []),
                  *self.metadata_columns]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise InputValueError(f"Columns {missing} are not in the dataset, which has {sorted(columns)}; "
                                  "pass the right column names to ChromaDatasink.")
        documents = table.column(self.document_column).to_pylist()
        for i, text in enumerate(documents):
            if not isinstance(text, str):
                raise InputTypeError(f"`{self.document_column}[{i}]` of a block must be a str; got {type(text).__name__}.")
        ids = table.column(self.id_column).to_pylist() if self.id_column else [content_id(t) for t in documents]
        embeddings = _vectors(BlockAccessor.for_block(table.select([self.embedding_column])).to_numpy(self.embedding_column))
        if embeddings.ndim != 2 or embeddings.shape[0] != len(documents):
            raise InputValueError(f"`{self.embedding_column}` must hold one 1-D vector per row; got shape {embeddings.shape}.")
        metadatas = None
        if self.metadata_columns:
            values = {c: table.column(c).to_pylist() for c in self.metadata_columns}
            metadatas = [{k: values[c][i] for c, k in self.metadata_columns.items() if not _missing(values[c][i])} or None
                         for i in range(len(documents))]  # Chroma takes None for a row without metadata
        if self.metadata_json_column:
            if self.metadata_json_column not in columns:
                raise InputValueError(f"Column {self.metadata_json_column!r} is not in the dataset, which has "
                                      f"{sorted(columns)}; pass the right metadata_json_column.")
            metadatas = [({**(metadatas[i] or {})} if metadatas else {}) | _json_object(v, self.metadata_json_column, i)
                         for i, v in enumerate(table.column(self.metadata_json_column).to_pylist())]
            metadatas = [m or None for m in metadatas]
        for i, value in enumerate(ids):
            if not isinstance(value, str) or not value:
                raise InputTypeError(f"`{self.id_column}[{i}]` of a block must be a non-empty str; got {value!r}.")
        first: dict[str, int] = {}
        for i, value in enumerate(ids):
            j = first.setdefault(value, i)
            if documents[j] != documents[i]:
                raise InputValueError(f"Rows {j} and {i} of a block share the id {value!r} but their texts differ. "
                                      "Make ids unique (or leave id_column=None: content ids).")
        keep = list({value: i for i, value in enumerate(ids)}.values())  # one row per id (same id, same content)
        if len(keep) < len(ids):
            ids, documents = [ids[i] for i in keep], [documents[i] for i in keep]
            embeddings = embeddings[keep]
            metadatas = None if metadatas is None else [metadatas[i] for i in keep]
        return _Rows(ids, documents, embeddings, metadatas)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # None or NaN


def _json_object(value: Any, column: str, row: int) -> dict[str, Any]:
    import json

    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InputTypeError(f"`{column}[{row}]` must be a JSON object (str); got {value!r:.60}.")
    return parsed


def _vectors(column: Any) -> np.ndarray:
    """A 2-D float32 array from a tensor column (Ray's) or a list column (plain Arrow: one array per row)."""
    column = np.asarray(column)
    if column.dtype == object:
        try:
            return np.stack([np.asarray(v, dtype=np.float32) for v in column]) if len(column) else column.astype(np.float32)
        except (TypeError, ValueError):
            lengths = sorted({-1 if v is None else len(v) for v in column})
            raise InputValueError(f"The vectors of one block differ in length ({lengths}; -1: no vector); every row "
                                  "must have one of the model's dimension.") from None
    return column.astype(np.float32, copy=False)


def _unwrap(exc: BaseException) -> BaseException:
    """The st_plugins error inside a Ray actor/task error, when there is one."""
    from st_plugins.errors import StPluginsError

    seen, todo = 0, [exc]
    while todo and seen < 12:  # RayTaskError.cause (nested when an actor's task failed inside a task), __cause__
        inner, seen = todo.pop(0), seen + 1
        if isinstance(inner, StPluginsError) and not isinstance(inner, ray.exceptions.RayError):
            return inner
        if isinstance(inner, StPluginsError):  # Ray's dual class: its message is the remote traceback
            cause = getattr(inner, "cause", None)
            if isinstance(cause, StPluginsError):
                return cause
            ours = next(c for c in type(inner).__mro__ if issubclass(c, StPluginsError) and not issubclass(c, ray.exceptions.RayError))
            return ours(str(inner).strip().splitlines()[-1].split(": ", 1)[-1])  # the last line: our message
        todo += [e for e in (getattr(inner, "cause", None), inner.__cause__, inner.__context__) if e is not None]
    return exc
