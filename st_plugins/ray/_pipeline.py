"""Dataset helpers: the map_batches calls with actor counts and resources filled in, and Ray indexing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ray

from st_plugins.core.validation import check_positive_int
from st_plugins.errors import InputValueError
from st_plugins.ray._batches import EmbedBatch, RerankBatch
from st_plugins.ray._sink import ChromaDatasink, _unwrap

__all__ = ["embed_dataset", "rerank_dataset", "index_documents"]


def _resources(concurrency: int | None, num_cpus: float, num_gpus: float | None, blocks: int | None = None) -> dict[str, Any]:
    """map_batches' actor settings: one actor per ``num_cpus`` CPUs (or ``num_gpus`` GPUs) of the cluster by
    default, and no more actors than ``blocks`` (when known) to feed them."""
    if not isinstance(num_cpus, (int, float)) or isinstance(num_cpus, bool) or num_cpus <= 0:
        raise InputValueError(f"`num_cpus` must be a positive number (CPUs per actor); got {num_cpus!r}.")
    if num_gpus is not None and (not isinstance(num_gpus, (int, float)) or isinstance(num_gpus, bool) or num_gpus <= 0):
        raise InputValueError(f"`num_gpus` must be a positive number (GPUs per actor) or None; got {num_gpus!r}.")
    total = ray.cluster_resources()
    have, per = (total.get("GPU", 0), num_gpus) if num_gpus else (total.get("CPU", 1), num_cpus)
    if num_gpus and have < num_gpus:
        raise InputValueError(f"`num_gpus={num_gpus}` per actor (--gpus-per-actor), but the Ray cluster has {have:g} GPUs. "
                              "Drop it to run on the CPUs.")
    if concurrency is None:
        concurrency = max(1, min(int(have // per), blocks or int(have // per)))
    else:
        concurrency = check_positive_int(concurrency, "concurrency")  # --actors
    settings: dict[str, Any] = {"compute": ray.data.ActorPoolStrategy(size=concurrency), "num_cpus": num_cpus}
    if num_gpus:
        settings["num_gpus"] = num_gpus
    return settings


def _map(ds: Any, cls: type, kwargs: dict[str, Any], rows_per_batch: int, resources: dict[str, Any]) -> Any:
    """``ds.map_batches(cls)`` on an actor pool; ``cls(**kwargs)`` is made here first, so a bad setting fails now."""
    import inspect

    allowed = [n for n in inspect.signature(cls).parameters]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise InputValueError(f"Unknown {cls.__name__} settings {unknown}; allowed: {allowed}.")
    cls(**kwargs)
    return ds.map_batches(cls, fn_constructor_kwargs=kwargs, batch_size=check_positive_int(rows_per_batch, "rows_per_batch"),
                          **resources)


def embed_dataset(
    ds: Any,
    model: str | os.PathLike = "all-MiniLM-L6-v2",
    *,
    column: str = "text",
    output_column: str = "embedding",
    concurrency: int | None = None,
    num_cpus: float = 1,
    num_gpus: float | None = None,
    rows_per_batch: int = 256,
    _blocks: int | None = None,
    **settings: Any,
) -> Any:
    """``ds`` with an ``output_column`` of vectors: :class:`EmbedBatch` on an actor pool (lazy, as Ray Data is).

    Args:
        ds: A ``ray.data.Dataset`` with a str column ``column``.
        model: The bi-encoder (name, folder or hub id).
        concurrency: Actors (default: the cluster's CPUs / ``num_cpus``, or GPUs / ``num_gpus``).
        num_cpus: CPUs per actor (also its intra-op threads: Ray sets ``OMP_NUM_THREADS``).
        num_gpus: GPUs per actor: the model then runs on cuda with torch.
        rows_per_batch: Rows per call of an actor (Ray's ``batch_size``).
        **settings: :class:`EmbedBatch` settings (``batch_size``, ``backend``, ``role``, ``prompt_name``,
            ``prompt``, ``normalize_embeddings``, ``truncate_dim``, ``model_kwargs``, ``device``).

    Raises:
        InputValueError / InputTypeError: a bad setting (checked here, on the driver).
    """
    kwargs = {"model": model, "column": column, "output_column": output_column, **settings}
    return _map(ds, EmbedBatch, kwargs, rows_per_batch, _resources(concurrency, num_cpus, num_gpus, _blocks))


def rerank_dataset(
    ds: Any,
    model: str | os.PathLike = "st-plugins/qa-reranker",
    *,
    query_column: str = "query",
    document_column: str = "document",
    output_column: str = "score",
    concurrency: int | None = None,
    num_cpus: float = 1,
    num_gpus: float | None = None,
    rows_per_batch: int = 256,
    **settings: Any,
) -> Any:
    """``ds`` with an ``output_column`` of scores: :class:`RerankBatch` on an actor pool (see :func:`embed_dataset`)."""
    kwargs = {"model": model, "query_column": query_column, "document_column": document_column,
              "output_column": output_column, **settings}
    return _map(ds, RerankBatch, kwargs, rows_per_batch, _resources(concurrency, num_cpus, num_gpus))


def index_documents(
    texts: Sequence[str],
    collection: str = "st_plugins",
    *,
    path: str | os.PathLike | None = None,
    url: str | None = None,
    ids: Sequence[str] | None = None,
    metadatas: Sequence[dict[str, Any]] | None = None,
    embedding_function: Any = None,
    device: str | None = None,
    batch_size: int = 64,
    concurrency: int | None = None,
    num_gpus: float | None = None,
    show_progress_bar: bool = True,
) -> Any:
    """Embed ``texts`` on the Ray cluster and write them once each into a Chroma collection.

    The Ray counterpart of :func:`st_plugins.indexing.index_documents`: the same checks, ids and
    result; ids already in the collection are not embedded again, and every write is an upsert, so a
    run that was killed (or a task Ray retried) and re-run ends with every text present exactly once.
    Connects to Ray with ``ray.init()`` when it is not connected yet (a local cluster).

    Args:
        texts: The documents (str each).
        collection: The collection name (created when missing).
        path / url: An embedded database folder, or a ``chroma run`` server (one of the two).
        ids: One id per text (default: :func:`~st_plugins.indexing.content_id` of the text).
        metadatas: One metadata dict per text (str / int / float / bool values), or ``None``.
        embedding_function: The collection's :class:`~st_plugins.chroma.ChromaEmbeddingFunction`
            (default: the one an existing collection stores, else all-MiniLM-L6-v2); the actors embed
            with its settings, so queries match.
        device: Where the actors embed (default: cuda on an actor given a GPU, else cpu).
        batch_size: Texts per forward pass in an actor.
        concurrency / num_gpus: Actors and GPUs per actor (see :func:`embed_dataset`).
        show_progress_bar: Ray Data's progress bars.

    Returns:
        An :class:`~st_plugins.indexing.IndexResult` (ids in input order, added, already present, total).
    """
    import json

    from st_plugins.indexing import IndexResult, check_documents

    texts, ids, metadatas, order = check_documents(texts, ids, metadatas, batch_size)
    # Metadata travels as one JSON string per row: Ray's numpy batches would turn a column with gaps into floats.
    sink = ChromaDatasink(collection, path=path, url=url, embedding_function=embedding_function, id_column="id",
                          metadata_json_column="metadata" if metadatas else None)  # checks path / url first
    if not ray.is_initialized():
        ray.init(log_to_driver=show_progress_bar)
    try:
        ef = sink.embedding_function()
        present = sink.present([ids[i] for i in order])
        todo = [i for i in order if ids[i] not in present]
        result = IndexResult(ids=ids, added=len(todo), skipped=len(order) - len(todo))
        if todo:
            rows = [{"id": ids[i], "text": texts[i], **({"metadata": json.dumps(metadatas[i])} if metadatas else {})}
                    for i in todo]
            context = ray.data.DataContext.get_current()
            bars, context.enable_progress_bars = context.enable_progress_bars, show_progress_bar
            try:
                blocks = max(1, min(-(-len(rows) // 128), 200))
                ds = ray.data.from_items(rows, override_num_blocks=blocks)
                ds = embed_dataset(ds, ef.model_name, concurrency=concurrency, num_gpus=num_gpus, batch_size=batch_size,
                                   rows_per_batch=max(128, batch_size), _blocks=blocks, **_settings_of(ef, device))
                ds.write_datasink(sink, ray_remote_args={"num_cpus": 0})
            except Exception as exc:  # a typed error from a task arrives wrapped (with the remote traceback)
                raise _unwrap(exc) from None
            finally:
                context.enable_progress_bars = bars
        result.total = sink.rows_in_collection if sink.rows_in_collection is not None else sink.count()
    finally:
        sink.close()
    return result


def _settings_of(ef: Any, device: str | None) -> dict[str, Any]:
    """EmbedBatch settings giving exactly the vectors ``ef`` gives to documents (on ``device``)."""
    settings: dict[str, Any] = {"role": "document", "device": device, "normalize_embeddings": ef.normalize_embeddings,
                                "truncate_dim": ef.truncate_dim, "revision": ef.revision}
    if ef.prompts.get("document") is not None:
        settings["prompt"] = ef.prompts["document"]
    if ef.dtype:
        settings["model_kwargs"] = {"dtype": ef.dtype}
    return settings
