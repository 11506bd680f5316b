"""The cross-encoder: sentence-transformers' ``CrossEncoder`` API (predict, rank, save) on transformers.

A cross-encoder reads a (query, document) pair jointly and returns one score (one label) or one score
per label. Loading, batching and input checks are the bi-encoder's; folder formats live in
:mod:`st_plugins.core.cross_folder`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from st_plugins.core import batching
from st_plugins.core import cross_folder as cf
from st_plugins.core.backbone import default_device, load_transformer
from st_plugins.core.backends import check_backend
from st_plugins.core.backends.dispatch import FastPath, probe_batches
from st_plugins.core.validation import as_pair_list, as_text_list, check_positive_int
from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["CrossEncoder"]

_BACKENDS = ("auto", "torch", "onnx", "bf16")  # int8 is a bi-encoder path only


class CrossEncoder(nn.Module):
    """Score (query, document) pairs; drop-in for ``sentence_transformers.CrossEncoder``.

    Args:
        model_name_or_path: A folder, a registered name, or a hub id in the hub cache (``cross-encoder/<name>`` too).
        num_labels: Outputs of the classification head (default: the checkpoint's; 1 for a bare backbone).
        max_length: Token limit per pair (default: the tokenizer's, capped at the position embeddings).
        activation_fn: Applied to the logits by :meth:`predict` (default: the folder's, else ``Sigmoid`` for one
            label, ``Identity`` otherwise); non-``torch`` classes in config files need ``trust_remote_code``.
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available).
        cache_folder: Hub cache folder.
        revision: Hub revision.
        local_files_only: Never touch the network.
        trust_remote_code: Allow model code and activation classes from the folder (off by default).
        token: Accepted for signature compatibility (models come from folders and the hub cache).
        model_kwargs: ``dtype`` (``"float32"``, ``"bfloat16"``, ...), ``attn_implementation``, ...
        tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained``.
        config_kwargs: Passed to ``AutoConfig.from_pretrained`` (e.g. ``classifier_dropout``).
        allow_pickle: Accept ``pytorch_model.bin`` checkpoints (unsafe; off by default).
        backend: How :meth:`predict` runs: ``"auto"`` (default: the exact ONNX Runtime path when available on
            CPU, else torch), ``"torch"``, ``"onnx"`` (exact, CPU) or ``"bf16"``. See :mod:`st_plugins.core.backends`.

    Training hooks (used by ``st_plugins.training``): ``features = model.tokenize_pairs(pairs)`` gives
    padded CPU tensors (truncated to :attr:`max_length`, input order kept) and
    ``model.logits(features)`` the differentiable float32 logits ``(batch, num_labels)`` on
    :attr:`device`, without the activation. Call ``model.train()`` / ``model.eval()`` as usual;
    :meth:`predict` restores the mode it found.

    Example:
        >>> model = CrossEncoder("all-MiniLM-L6-v2", device="cpu")  # a backbone: random 1-label head
        >>> model.num_labels, model.max_length
        (1, 512)
        >>> model.predict([("A man is eating pasta.", "A man is eating food.")]).shape
        (1,)
        >>> [hit["corpus_id"] for hit in model.rank("A query", ["doc a", "doc b"], top_k=1)] in ([0], [1])
        True
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike,
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn: Callable | None = None,
        device: str | None = None,
        cache_folder: str | os.PathLike | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        allow_pickle: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        check_backend(backend, _BACKENDS)
        for value, name in ((num_labels, "num_labels"), (max_length, "max_length")):
            if value is not None:
                check_positive_int(value, name)
        self.model_name_or_path = str(model_name_or_path)
        root = cf.locate_cross_encoder(model_name_or_path, cache_folder, revision, local_files_only)
        self.folder = cf.read_cross_folder(root)
        self.model = load_transformer(
            self.folder.transformer_path, task="sequence-classification", model_kwargs=model_kwargs,
            config_kwargs=self.folder.config_kwargs(config_kwargs, num_labels), trust_remote_code=trust_remote_code,
            allow_pickle=allow_pickle,
        )
        self.tokenizer = cf.load_cross_tokenizer(self.folder, tokenizer_kwargs, trust_remote_code)
        self.max_length = cf.initial_max_length(self.folder, max_length, tokenizer_kwargs, self.model.config,
                                             self.tokenizer)
        self.activation_fn = cf.resolve_activation(activation_fn, self.folder, self.num_labels, trust_remote_code)
        if hasattr(self.model.config, cf.LEGACY_ACTIVATION_KEY):
            delattr(self.model.config, cf.LEGACY_ACTIVATION_KEY)
        self._forward_keys = cf.model_input_keys(self.model)
        self.to(device or default_device())
        self._fast = FastPath(backend, "cross", root, self.device, _BACKENDS)
        self.eval()

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "activation_fn":  # a plain attribute, never a registered sub-module (as sentence-transformers)
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def max_length(self) -> int:
        """Pairs longer than this many tokens are truncated (``longest_first``)."""
        return self._max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self._max_length = check_positive_int(value, "max_length")
        self.tokenizer.model_max_length = self._max_length

    max_seq_length = max_length

    @property
    def num_labels(self) -> int:
        return int(self.model.config.num_labels)

    @property
    def config(self):
        """The transformers config (``config.id2label`` names the labels)."""
        return self.model.config

    @property
    def backend(self) -> str:
        """The inference backend of :meth:`predict` / :meth:`rank` (settable; see :mod:`st_plugins.core.backends`)."""
        return self._fast.backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._fast = FastPath(value, "cross", self._fast.root, self.device, _BACKENDS)

    def _probe_batches(self) -> list[dict[str, np.ndarray]]:
        return probe_batches(self.tokenizer, self.max_length, pairs=True)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _encode(self, pairs: list[tuple[str, str]]) -> dict[str, list[list[int]]]:
        return batching.tokenize(self.tokenizer, [q for q, _ in pairs], self.max_length, pairs=[d for _, d in pairs])

    def tokenize_pairs(self, pairs: Any) -> dict[str, Tensor]:
        """Padded features (CPU tensors) for a list of (query, document) pairs, in input order."""
        items, _ = as_pair_list(pairs, "pairs")
        if not items:
            raise InputValueError("`pairs` must hold at least one (query, document) pair; got an empty list.")
        enc = self._encode(items)
        return next(batching.padded_batches(self.tokenizer, enc, np.arange(len(items)), len(items)))[1]

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        inputs = {k: features[k].to(self.device) for k in self._forward_keys if k in features}
        return self.model(**inputs, return_dict=True).logits.float()

    def logits(self, features: dict[str, Tensor]) -> Tensor:
        """Float32 logits ``(batch, num_labels)`` for :meth:`tokenize_pairs` features (differentiable)."""
        return self(features)

    @torch.inference_mode()
    def _scores(self, pairs: list[tuple[str, str]], batch_size: int, show: bool, fn: Callable | None,
                softmax: bool) -> Tensor:
        enc = self._encode(pairs)
        rows: list[Any] = [None] * len(pairs)
        was_training = self.training
        self.eval()
        try:
            with tqdm(total=len(pairs), desc="Batches", disable=not show, unit="pair") as bar:
                batches = batching.padded_batches(self.tokenizer, enc, batching.length_order(enc), batch_size)
                fast = self._fast.runner(self.model, self.device, self._probe_batches, self._forward_keys)
                for idx, feats, out in fast.stream(batches) if fast else ((i, f, None) for i, f in batches):
                    logits = self.logits(feats) if out is None else torch.as_tensor(out, device=self.device).float()
                    scores = fn(logits) if fn is not None else logits
                    if self.num_labels == 1 and scores.ndim > 1:
                        scores = scores.squeeze(-1)
                    if softmax and scores.ndim > 1:
                        scores = torch.softmax(scores, dim=1)
                    for row, i in enumerate(idx):
                        rows[i] = scores[row]
                    bar.update(len(idx))
        finally:
            self.train(was_training)
        return torch.stack(rows).float()

    def predict(
        self,
        sentences: Any,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable | None = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> np.ndarray | np.float32 | Tensor | list[Tensor]:
        """Score pairs, in input order (batches are formed by token length).

        Args:
            sentences: A list of (query, document) pairs, or one pair.
            batch_size: Pairs per forward pass.
            show_progress_bar: Show a tqdm bar.
            activation_fn: Used instead of :attr:`activation_fn` (applied to float32 logits).
            apply_softmax: Softmax over labels (multi-label models).
            convert_to_numpy: Return float32 numpy (default); otherwise a list of tensors.
            convert_to_tensor: Return one tensor (wins over ``convert_to_numpy``).

        Returns:
            Shape ``(n,)`` for one label, ``(n, num_labels)`` otherwise (``n`` may be 0); one pair gives a
            numpy float32 scalar (or one row).

        Raises:
            InputTypeError: ``None``, non-pairs or non-str items (names the index).
            InputValueError: ``batch_size`` is not a positive int.
        """
        pairs, single = as_pair_list(sentences, "sentences")
        check_positive_int(batch_size, "batch_size")
        fn = activation_fn if activation_fn is not None else self.activation_fn
        if pairs:
            scores = self._scores(pairs, batch_size, bool(show_progress_bar), fn, apply_softmax)
        else:
            scores = torch.zeros((0,) if self.num_labels == 1 else (0, self.num_labels), device=self.device)
        out = scores if convert_to_tensor else scores.cpu().numpy() if convert_to_numpy else list(scores)
        return out[0] if single else out

    def rank(
        self,
        query: str,
        documents: list[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable | None = None,
    ) -> list[dict[str, Any]]:
        """``[{"corpus_id", "score"[, "text"]}]`` sorted by score, highest first (ties keep input order).

        Raises:
            InputValueError: The model has more than one label, or ``top_k`` is not a positive int.
            InputTypeError: ``query`` is not a str, ``documents`` not a list of str.
        """
        if self.num_labels != 1:
            raise InputValueError(
                f"`rank` needs a model with num_labels=1 (one relevance score); this model has {self.num_labels} "
                f"labels {list(self.config.id2label.values())}. Use `predict` on (query, document) pairs instead."
            )
        if not isinstance(query, str):
            raise InputTypeError(f"`query` must be a str; got {type(query).__name__}.")
        docs, single = as_text_list(documents, "documents")
        if single:
            raise InputTypeError("`documents` must be a list of str; got a single str. Wrap it in a list.")
        if top_k is not None:
            check_positive_int(top_k, "top_k")
        scores = self.predict([(query, d) for d in docs], batch_size=batch_size, show_progress_bar=show_progress_bar,
                              activation_fn=activation_fn, convert_to_tensor=True).tolist()
        hits = [{"corpus_id": i, "score": s} for i, s in enumerate(scores)]
        if return_documents:
            hits = [{**hit, "text": docs[hit["corpus_id"]]} for hit in hits]
        return sorted(hits, key=lambda hit: hit["score"], reverse=True)[:top_k]

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        """LangChain ``BaseCrossEncoder`` protocol: one float per pair (label 1's score for multi-label models)."""
        pairs, _ = as_pair_list(text_pairs, "text_pairs")
        scores = self.predict(pairs, convert_to_numpy=True)
        return [float(s) for s in (scores[:, 1] if scores.ndim > 1 else scores)]

    def save(self, path: str | os.PathLike, safe_serialization: bool = True) -> None:
        """Write a folder sentence-transformers' ``CrossEncoder`` loads with identical scores (safetensors)."""
        cf.save_cross_encoder(self, Path(path))

    save_pretrained = save

    def __repr__(self) -> str:
        return (f"CrossEncoder({self.model_name_or_path!r}, num_labels={self.num_labels}, "
                f"max_length={self.max_length}, activation_fn={self.activation_fn!r}, device={str(self.device)!r})")
