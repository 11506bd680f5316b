"""Callable classes for ``ray.data.Dataset.map_batches``: one model per actor, columns in, a column out.

Each actor loads its model once, on first use, through the process-wide cache
(:func:`st_plugins.core.cache.get_model`), so it runs on the torch-free runtime on the CPU (the graph
is read from the machine's disk cache) and on torch when the actor is given a GPU. The classes hold
only settings, so they pickle cheaply; they do no model work of their own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from st_plugins.core.backends import check_backend
from st_plugins.core.validation import as_pair_list, as_text_list, check_choice, check_positive_int
from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["EmbedBatch", "RerankBatch"]

_ROLES = (None, "query", "document")


def _column(batch: Any, name: str, what: str) -> Any:
    """``batch[name]``, or an error naming the columns the batch has."""
    if not isinstance(batch, Mapping) and not hasattr(batch, "columns"):
        raise InputTypeError(f"A batch must be a dict of columns or a pandas DataFrame (map_batches' batch_format "
                             f"'numpy' or 'pandas'); got {type(batch).__name__}.")
    if name not in batch:
        raise InputValueError(f"No {what} column {name!r} in the batch; it has {sorted(map(str, batch))}. "
                              f"Pass the right name ({what}_column=...) or rename the column.")
    return batch[name]


def _check_column_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputTypeError(f"`{name}` must be a non-empty str (a column name); got {value!r}.")
    return value


def _device(device: str | None) -> str | None:
    """``device``, else inside a Ray worker ``"cuda"`` only when Ray gave this actor a GPU (Ray shows every GPU
    of the node to an actor without one), else ``None`` (the core's default)."""
    if device is not None:
        return device
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
        return "cuda" if ray.get_gpu_ids() else "cpu"
    return None


def _check_optional_str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InputTypeError(f"`{name}` must be a str or None; got {type(value).__name__} ({value!r}).")
    return value


def _set_model_settings(obj: Any, model: Any, output_column: Any, batch_size: Any, device: Any, backend: Any) -> None:
    """The settings both callables share, checked: ``model_name`` (folders made absolute), ``output_column``,
    ``batch_size``, ``device``, ``backend``."""
    if not isinstance(model, (str, os.PathLike)):
        raise InputTypeError(f"`model` must be a model name, folder or hub id (str); got {type(model).__name__}.")
    name = os.fspath(model)
    obj.model_name = os.path.abspath(name) if os.path.isdir(name) else name
    obj.output_column = _check_column_name(output_column, "output_column")
    obj.batch_size = check_positive_int(batch_size, "batch_size")
    obj.device = _check_optional_str(device, "device")
    obj.backend = check_backend(backend, ("auto", "torch", "onnx", "bf16", "int8"))


def _backend(name: str) -> dict[str, str]:
    """``backend`` for :func:`get_model`, left out when it is the default (one cache entry with the other adapters)."""
    return {} if name == "auto" else {"backend": name}


def _out(batch: Any, column: str, values: np.ndarray) -> Any:
    """The batch with ``column`` set, as a dict of numpy arrays or as a pandas frame (as it came in)."""
    if hasattr(batch, "assign"):  # pandas
        return batch.assign(**{column: list(values) if values.ndim > 1 else values})
    return {**batch, column: values}


class EmbedBatch:
    """Embed a text column into a float32 vector column; for ``Dataset.map_batches`` with an actor pool.

    Args:
        model: A registered name (default: the packaged ``"all-MiniLM-L6-v2"``), a folder or a hub id.
        column: The input column of str.
        output_column: The column of vectors (one float32 array of the model's dimension per row).
        batch_size: Texts per forward pass inside the actor (Ray's own ``batch_size`` sets the rows per call).
        device: ``"cpu"``, ``"cuda"``, ... (default: in a Ray actor, cuda when Ray gave it a GPU, else cpu).
        backend: ``"auto"`` (the torch-free graph on the CPU), ``"onnx"``, ``"int8"``, ``"torch"`` or ``"bf16"``.
        role: ``"document"`` or ``"query"`` embed with the model's prompt for that role (as
            ``encode_document`` / ``encode_query``); ``None`` (default) as ``encode``.
        prompt_name: A prompt of the model to prepend (wins over ``role``'s).
        prompt: A prompt text to prepend (wins over ``prompt_name``).
        normalize_embeddings: L2-normalize the vectors.
        truncate_dim: Keep the first ``truncate_dim`` dimensions (Matryoshka models).
        model_kwargs: Passed to the model (e.g. ``{"dtype": "bfloat16"}``).
        revision: Hub revision of ``model``.

    Every setting is checked when the object is made, on the driver; the model loads in the actor.

    Example:
        >>> embed = EmbedBatch("all-MiniLM-L6-v2", device="cpu")
        >>> out = embed({"text": np.array(["A man is eating food.", "A cheetah runs."], dtype=object)})
        >>> out["embedding"].shape, str(out["embedding"].dtype)
        ((2, 384), 'float32')

    With Ray (``ds.map_batches(EmbedBatch, fn_constructor_kwargs={...}, concurrency=2)``) each actor
    makes its own instance; :func:`st_plugins.ray.embed_dataset` does that for you.
    """

    def __init__(
        self,
        model: str | os.PathLike = "all-MiniLM-L6-v2",
        column: str = "text",
        output_column: str = "embedding",
        batch_size: int = 64,
        device: str | None = None,
        backend: str = "auto",
        role: str | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        revision: str | None = None,
    ) -> None:
        _set_model_settings(self, model, output_column, batch_size, device, backend)
        self.revision = _check_optional_str(revision, "revision")
        self.column = _check_column_name(column, "column")
        self.role = check_choice(role, _ROLES, "role")
        self.prompt_name = _check_optional_str(prompt_name, "prompt_name")
        self.prompt = _check_optional_str(prompt, "prompt")
        if not isinstance(normalize_embeddings, bool):
            raise InputTypeError(f"`normalize_embeddings` must be a bool; got {normalize_embeddings!r}.")
        self.normalize_embeddings = normalize_embeddings
        self.truncate_dim = None if truncate_dim is None else check_positive_int(truncate_dim, "truncate_dim")
        if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
            raise InputTypeError(f"`model_kwargs` must be a dict (e.g. {{'dtype': 'bfloat16'}}) or None; got {model_kwargs!r}.")
        self.model_kwargs = dict(model_kwargs) if model_kwargs else None

    @property
    def model(self) -> Any:
        """This process's shared ``SentenceTransformer`` for these settings (loaded once)."""
        from st_plugins.core.cache import get_model

        return get_model("bi", self.model_name, device=_device(self.device), revision=self.revision, truncate_dim=self.truncate_dim,
                         model_kwargs=self.model_kwargs, **_backend(self.backend))

    def __call__(self, batch: Any) -> Any:
        """``batch`` with :attr:`output_column` added: one vector per row of :attr:`column`, in row order."""
        texts, _ = as_text_list(_column(batch, self.column, "text"), self.column)
        model = self.model
        encode = {"query": model.encode_query, "document": model.encode_document}.get(self.role, model.encode)
        if texts:
            vectors = encode(texts, prompt_name=self.prompt_name, prompt=self.prompt, batch_size=self.batch_size,
                             normalize_embeddings=self.normalize_embeddings)
        else:
            vectors = np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
        return _out(batch, self.output_column, np.asarray(vectors, dtype=np.float32))


class RerankBatch:
    """Score (query, document) columns with a cross-encoder into a float32 score column; for ``map_batches``.

    Args:
        model: A cross-encoder name or folder (default: ``"st-plugins/qa-reranker"``, made by
            ``st-plugins train-reranker --task qa``).
        query_column: The column of queries (str).
        document_column: The column of documents (str).
        output_column: The score column.
        batch_size: Pairs per forward pass inside the actor.
        device: ``"cpu"``, ``"cuda"``, ... (default: in a Ray actor, cuda when Ray gave it a GPU, else cpu).
        backend: ``"auto"``, ``"onnx"``, ``"int8"``, ``"torch"`` or ``"bf16"``.
        apply_activation: Apply the model's activation (sigmoid for one label), as ``CrossEncoder.predict``
            does; ``False`` gives the raw logits.

    Scores equal ``CrossEncoder.predict`` on the same pairs; tests/ray compares them row for row.
    """

    def __init__(
        self,
        model: str | os.PathLike = "st-plugins/qa-reranker",
        query_column: str = "query",
        document_column: str = "document",
        output_column: str = "score",
        batch_size: int = 32,
        device: str | None = None,
        backend: str = "auto",
        apply_activation: bool = True,
    ) -> None:
        _set_model_settings(self, model, output_column, batch_size, device, backend)
        self.query_column = _check_column_name(query_column, "query_column")
        self.document_column = _check_column_name(document_column, "document_column")
        if not isinstance(apply_activation, bool):
            raise InputTypeError(f"`apply_activation` must be a bool; got {apply_activation!r}.")
        self.apply_activation = apply_activation

    @property
    def model(self) -> Any:
        """This process's shared ``CrossEncoder`` for these settings (loaded once)."""
        from st_plugins.core.cache import get_model

        return get_model("cross", self.model_name, device=_device(self.device), **_backend(self.backend))

    def __call__(self, batch: Any) -> Any:
        """``batch`` with :attr:`output_column` added: one score per (query, document) row, in row order."""
        queries, _ = as_text_list(_column(batch, self.query_column, "query"), self.query_column)
        documents, _ = as_text_list(_column(batch, self.document_column, "document"), self.document_column)
        pairs, _ = as_pair_list(list(zip(queries, documents)), "pairs")
        model = self.model
        if not pairs:
            scores = np.zeros((0,), dtype=np.float32)
        elif self.apply_activation:
            scores = np.asarray(model.predict(pairs, batch_size=self.batch_size), dtype=np.float32)
        else:
            scores = model.predict_logits(pairs, batch_size=self.batch_size)
            scores = scores[:, 0] if scores.shape[1] == 1 else scores
        return _out(batch, self.output_column, np.asarray(scores, dtype=np.float32))
