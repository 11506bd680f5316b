"""The bi-encoder: sentence-transformers' ``SentenceTransformer`` API on torch + transformers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from st_plugins.core import batching
from st_plugins.core.backends import check_backend
from st_plugins.core.backends.dispatch import FastPath, probe_batches
from st_plugins.core.backbone import default_device, load_tokenizer, load_transformer
from st_plugins.core.heads import Dense, Normalize
from st_plugins.core.pooling import pool
from st_plugins.core.quantization import PRECISIONS, quantization_ranges, quantize_embeddings
from st_plugins.core.resolve import resolve_model_path
from st_plugins.core.similarity import SimilarityFunction
from st_plugins.core.spec import DenseSpec, ModelSpec, PoolingSpec, read_spec
from st_plugins.core.validation import as_text_list, check_choice, check_positive_int
from st_plugins.errors import InputValueError

__all__ = ["SentenceTransformer", "DEFAULT_MODEL"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
OUTPUT_VALUES = ("sentence_embedding", "token_embeddings", None)
_FEATURE_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class SentenceTransformer(nn.Module):
    """Embed texts into fixed-size vectors; drop-in for ``sentence_transformers.SentenceTransformer``.

    Args:
        model_name_or_path: A folder, a registered name (``"all-MiniLM-L6-v2"``, the packaged default)
            or a hub id found in the hub cache.
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available, else cpu).
        prompts: ``{name: prompt}`` merged over the model's own prompts.
        default_prompt_name: Prompt used by :meth:`encode` when none is given.
        similarity_fn_name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        cache_folder: Hub cache folder.
        trust_remote_code: Allow model code from the folder (off by default).
        revision: Hub revision.
        local_files_only: Never touch the network.
        truncate_dim: Keep only the first ``truncate_dim`` dimensions (Matryoshka models).
        model_kwargs: ``dtype`` (``"float32"``, ``"bfloat16"``, ...) and ``attn_implementation``.
        allow_pickle: Accept ``pytorch_model.bin`` checkpoints (unsafe; off by default).
        backend: How :meth:`encode` runs the transformer: ``"auto"`` (default: the exact ONNX Runtime
            path when available on CPU, else torch), ``"torch"``, ``"onnx"`` (exact, CPU), ``"bf16"``
            (torch bfloat16 autocast) or ``"int8"`` (CPU). See :mod:`st_plugins.core.backends`.
            Training (``model(features)``) always runs torch.

    Example:
        >>> model = SentenceTransformer("all-MiniLM-L6-v2", device="cpu")
        >>> model.encode(["The weather is lovely today."]).shape
        (1, 384)
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | SimilarityFunction | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        truncate_dim: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        allow_pickle: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        check_backend(backend)
        root = resolve_model_path(
            model_name_or_path if model_name_or_path is not None else DEFAULT_MODEL,
            cache_folder=cache_folder, revision=revision, local_files_only=local_files_only, token=token,
        )
        self.model_name_or_path = str(model_name_or_path or DEFAULT_MODEL)
        self.spec: ModelSpec = read_spec(root)
        self.auto_model = load_transformer(
            self.spec.transformer_path, model_kwargs=model_kwargs, config_kwargs=config_kwargs,
            trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
        )
        self.tokenizer = load_tokenizer(self.spec.transformer_path, None, trust_remote_code, tokenizer_kwargs)
        if self.spec.do_lower_case:
            batching.add_lowercase(self.tokenizer)
        self._max_seq_length = self._initial_max_length()
        self.heads = nn.ModuleList(
            [Dense.load(s, allow_pickle, trust_remote_code) if isinstance(s, DenseSpec) else Normalize()
             for s in self.spec.steps if not isinstance(s, PoolingSpec)]
        )
        self.prompts = {"query": "", "document": "", **self.spec.prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name or self.spec.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise InputValueError(
                f"`default_prompt_name` {self.default_prompt_name!r} is not a prompt; known: {sorted(self.prompts)}."
            )
        self._similarity_fn_name: str | None = None
        self.similarity_fn_name = similarity_fn_name or self.spec.similarity_fn_name
        self.truncate_dim = None
        self.truncate_dim = self._check_truncate_dim(truncate_dim)
        self.quantization_ranges: np.ndarray | None = None
        self._builtin_ranges: dict[tuple, np.ndarray] = {}
        self._prompt_lengths: dict[str, int] = {}
        self.to(device or default_device())
        self._fast = FastPath(backend, "bi", self.spec.root, self.device)
        self.eval()

    # ----------------------------------------------------------------- properties
    def _initial_max_length(self) -> int:
        if self.spec.max_seq_length is not None:
            return int(self.spec.max_seq_length)
        limit = getattr(self.auto_model.config, "max_position_embeddings", None)
        tok_max = self.tokenizer.model_max_length
        return int(min(tok_max, limit) if limit and limit > 0 else tok_max)

    @property
    def max_seq_length(self) -> int:
        """Inputs longer than this many tokens are truncated."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self._max_seq_length = check_positive_int(value, "max_seq_length")

    @property
    def backend(self) -> str:
        """The inference backend of :meth:`encode` (settable; see :mod:`st_plugins.core.backends`)."""
        return self._fast.backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._fast = FastPath(value, "bi", self.spec.root, self.device)

    @property
    def device(self) -> torch.device:
        return next(self.auto_model.parameters()).device

    @property
    def similarity_fn_name(self) -> str:
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | SimilarityFunction | None) -> None:
        self._similarity_fn_name = None if value is None else SimilarityFunction.check(value)

    def get_embedding_dimension(self) -> int:
        """Dimension of the vectors :meth:`encode` returns (after ``truncate_dim``)."""
        dim = self._full_dimension()
        return min(dim, self.truncate_dim) if self.truncate_dim else dim

    get_sentence_embedding_dimension = get_embedding_dimension

    def _full_dimension(self) -> int:
        dense = [h for h in self.heads if isinstance(h, Dense)]
        if dense:
            return dense[-1].linear.out_features
        return self.auto_model.config.hidden_size * len(self.spec.pooling.modes)

    def _check_truncate_dim(self, truncate_dim: int | None) -> int | None:
        if truncate_dim is None:
            return None
        check_positive_int(truncate_dim, "truncate_dim")
        if truncate_dim > self._full_dimension():
            raise InputValueError(
                f"`truncate_dim` must be at most the embedding dimension {self._full_dimension()}; got {truncate_dim}."
            )
        return truncate_dim

    # ----------------------------------------------------------------- forward
    def tokenize(self, texts: list[str], prompt: str | None = None) -> dict[str, Tensor]:
        """Padded features for ``texts`` (with ``prompt`` prepended), as ``forward`` expects."""
        texts = [prompt + t for t in texts] if prompt else list(texts)
        enc = batching.tokenize(self.tokenizer, texts, self.max_seq_length)
        order = np.arange(len(texts))
        _, features = next(batching.padded_batches(self.tokenizer, enc, order, max(len(texts), 1)))
        if prompt:
            features["prompt_length"] = self._prompt_length(prompt)
        return features

    def _prompt_length(self, prompt: str) -> int:
        if prompt not in self._prompt_lengths:
            ids = self.tokenizer(prompt, truncation=True, max_length=self.max_seq_length)["input_ids"]
            special = set(self.tokenizer.all_special_ids)
            self._prompt_lengths[prompt] = len(ids) - (1 if ids and ids[-1] in special else 0)
        return self._prompt_lengths[prompt]

    def forward(self, features: dict[str, Any]) -> dict[str, Tensor]:
        """Token embeddings -> pooling -> Dense/Normalize heads, in the folder's module order."""
        inputs = {k: features[k] for k in _FEATURE_KEYS if k in features}
        return self._pool_and_heads(features, self.auto_model(**inputs, return_dict=True).last_hidden_state)

    def _pool_and_heads(self, features: dict[str, Any], tokens: Tensor) -> dict[str, Tensor]:
        out = dict(features, token_embeddings=tokens)
        include = self.spec.pooling.include_prompt
        prompt_length = None if include else features.get("prompt_length")
        x, heads = None, iter(self.heads)
        for step in self.spec.steps:
            x = pool(tokens, features["attention_mask"], step.modes, prompt_length) if isinstance(step, PoolingSpec) else next(heads)(x)
        out["sentence_embedding"] = x
        return out

    # ----------------------------------------------------------------- encode
    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            if not isinstance(prompt, str):
                raise InputValueError(f"`prompt` must be a str; got {type(prompt).__name__}.")
            return prompt
        if prompt_name is not None:
            if prompt_name not in self.prompts:
                raise InputValueError(
                    f"`prompt_name` {prompt_name!r} is not one of this model's prompts {sorted(self.prompts)}. "
                    "Pass one of them, or pass `prompt=` with the text to prepend."
                )
            return self.prompts[prompt_name]
        if self.default_prompt_name is not None:
            return self.prompts.get(self.default_prompt_name)
        return None

    @torch.inference_mode()
    def _run(self, texts: list[str], prompt: str | None, batch_size: int, show_progress_bar: bool,
             output_value: str | None, device: torch.device) -> list[Any]:
        full = [prompt + t for t in texts] if prompt else texts
        enc = batching.tokenize(self.tokenizer, full, self.max_seq_length)
        order = batching.length_order(enc)
        results: list[Any] = [None] * len(texts)
        prompt_length = self._prompt_length(prompt) if prompt else None
        bar = tqdm(total=len(texts), desc="Batches", disable=not show_progress_bar, unit="text")
        was_training = self.training
        self.eval()  # no dropout while encoding; the caller's mode is restored below
        try:
            self._run_batches(enc, order, batch_size, prompt_length, output_value, device, results, bar)
        finally:
            self.train(was_training)
            bar.close()
        return results

    def _run_batches(self, enc: dict, order: np.ndarray, batch_size: int, prompt_length: int | None,
                     output_value: str | None, device: torch.device, results: list[Any], bar: Any) -> None:
        batches = batching.padded_batches(self.tokenizer, enc, order, batch_size)
        fast = self._fast.runner(self.auto_model, device, self._probe_batches, _FEATURE_KEYS)
        for idx, feats, tokens in fast.stream(batches) if fast else ((i, f, None) for i, f in batches):
            feats = {k: v.to(device) for k, v in feats.items()}
            if prompt_length is not None:
                feats["prompt_length"] = prompt_length
            out = self.forward(feats) if tokens is None else self._pool_and_heads(feats, torch.as_tensor(tokens, device=device))
            for row, i in enumerate(idx):
                results[i] = self._pick(out, row, output_value)
            bar.update(len(idx))

    def _probe_batches(self) -> list[dict[str, np.ndarray]]:
        return probe_batches(self.tokenizer, self.max_seq_length)

    @staticmethod
    def _pick(out: dict[str, Tensor], row: int, output_value: str | None) -> Any:
        if output_value == "sentence_embedding":
            return out["sentence_embedding"][row].float()
        mask = out["attention_mask"][row].bool()
        if output_value == "token_embeddings":
            last = int(torch.nonzero(mask).max()) + 1 if mask.any() else 1
            return out["token_embeddings"][row][:last]
        return {k: (v[row] if isinstance(v, Tensor) and v.dim() and v.size(0) == out["input_ids"].size(0) else v)
                for k, v in out.items()}

    def encode(
        self,
        sentences: str | list[str],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: Literal["sentence_embedding", "token_embeddings"] | None = "sentence_embedding",
        precision: Literal["float32", "int8", "uint8", "binary", "ubinary"] = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        ranges: np.ndarray | None = None,
    ) -> np.ndarray | Tensor | list[Any]:
        """Embed one text (1-D result) or a list of texts (2-D result), in input order.

        Args:
            sentences: A str or a list of str (empty strings are fine; over-long texts are truncated).
            prompt_name: Key of :attr:`prompts` whose text is prepended.
            prompt: Text to prepend (wins over ``prompt_name``).
            batch_size: Texts per forward pass (batches are formed by token length).
            show_progress_bar: Show a tqdm bar.
            output_value: ``"sentence_embedding"``, ``"token_embeddings"`` or ``None`` (all outputs).
            precision: ``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"``.
            convert_to_numpy: Return a numpy array (default).
            convert_to_tensor: Return one torch tensor (wins over ``convert_to_numpy``).
            device: Run on this device instead of the model's.
            normalize_embeddings: L2-normalize the returned vectors.
            truncate_dim: Keep the first ``truncate_dim`` dimensions.
            ranges: int8/uint8 calibration ranges ``(2, dim)``; default: the model's
                :attr:`quantization_ranges`, else the batch itself, else :meth:`calibrate_quantization`.

        Returns:
            ``np.ndarray`` of shape ``(n, dim)`` (or ``(dim,)`` for a str) unless asked otherwise.

        Raises:
            InputTypeError: ``None``, bytes, nested lists or other non-str items (names the index).
            InputValueError: ``batch_size <= 0``, unknown ``prompt_name``, precision or output_value,
                ``truncate_dim`` larger than the dimension.
        """
        texts, single = as_text_list(sentences)
        check_positive_int(batch_size, "batch_size")
        check_choice(precision, PRECISIONS, "precision")
        check_choice(output_value, OUTPUT_VALUES, "output_value")
        truncate_dim = self._check_truncate_dim(truncate_dim) or self.truncate_dim
        prompt_text = self._resolve_prompt(prompt, prompt_name)
        run_device = torch.device(device) if device is not None else self.device
        if run_device != self.device:
            self.to(run_device)
        if output_value != "sentence_embedding":
            results = self._run(texts, prompt_text, batch_size, bool(show_progress_bar), output_value, run_device)
            return results[0] if single else results
        if not texts:
            return self._empty(truncate_dim, convert_to_tensor, convert_to_numpy)
        rows = self._run(texts, prompt_text, batch_size, bool(show_progress_bar), output_value, run_device)
        emb = torch.stack(rows)
        if truncate_dim:
            emb = emb[:, :truncate_dim]
        if normalize_embeddings:
            emb = torch.nn.functional.normalize(emb, p=2, dim=1)
        if precision != "float32":
            emb = self._quantize(emb, precision, ranges, prompt_text, truncate_dim, normalize_embeddings)
            result: Any = torch.from_numpy(emb) if convert_to_tensor else emb if convert_to_numpy else list(torch.from_numpy(emb))
        elif convert_to_tensor:
            result = emb
        elif convert_to_numpy:
            result = emb.cpu().numpy()
        else:
            result = list(emb)
        return result[0] if single else result

    def _empty(self, truncate_dim: int | None, to_tensor: bool, to_numpy: bool) -> Any:
        dim = min(self._full_dimension(), truncate_dim or self._full_dimension())
        if to_tensor:
            return torch.empty((0, dim), device=self.device)
        return np.empty((0, dim), dtype=np.float32) if to_numpy else []

    def _quantize(self, emb: Tensor, precision: str, ranges: Any, prompt: str | None,
                  truncate_dim: int | None, normalize: bool) -> np.ndarray:
        array = emb.cpu().numpy()
        if precision.endswith("int8") and ranges is None:
            ranges = self.quantization_ranges
            if ranges is None and len(array) < 2:  # one vector cannot calibrate itself
                key = (prompt, normalize)
                if key not in self._builtin_ranges:
                    self._builtin_ranges[key] = self.calibrate_quantization(
                        prompt=prompt, normalize_embeddings=normalize, store=False)
                ranges = self._builtin_ranges[key]
            if ranges is not None:
                ranges = np.asarray(ranges)[:, : array.shape[1]]
        return quantize_embeddings(array, precision, ranges=ranges)

    def calibrate_quantization(self, sentences: list[str] | None = None, prompt: str | None = None,
                               normalize_embeddings: bool = False, store: bool = True) -> np.ndarray:
        """Compute int8/uint8 ranges from ``sentences`` (default: a built-in calibration set).

        With ``store=True`` they become :attr:`quantization_ranges`, used by every later int8/uint8
        :meth:`encode` without ``ranges=``. Without stored ranges, a batch calibrates on itself (as
        sentence-transformers does) and a single input uses the built-in set.

        Returns:
            The ranges, shape ``(2, dim)``.
        """
        from st_plugins.core.calibration import CALIBRATION_SENTENCES

        emb = self.encode(sentences or CALIBRATION_SENTENCES, prompt=prompt, normalize_embeddings=normalize_embeddings)
        ranges = quantization_ranges(emb)
        if store:
            self.quantization_ranges = ranges
        return ranges

    def encode_query(self, sentences: str | list[str], prompt_name: str | None = None, prompt: str | None = None,
                     **kwargs: Any) -> Any:
        """:meth:`encode` with the model's ``"query"`` prompt unless another is given."""
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **kwargs)

    def encode_document(self, sentences: str | list[str], prompt_name: str | None = None, prompt: str | None = None,
                        **kwargs: Any) -> Any:
        """:meth:`encode` with the model's ``"document"`` prompt (or ``"passage"``/``"corpus"``)."""
        if prompt_name is None and prompt is None:
            prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.prompts), None)
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **kwargs)

    # ----------------------------------------------------------------- similarity
    def similarity(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """Matrix of :attr:`similarity_fn_name` scores between two sets of embeddings."""
        return SimilarityFunction.to_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """Scores between ``embeddings1[i]`` and ``embeddings2[i]``."""
        return SimilarityFunction.to_similarity_pairwise_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    # ----------------------------------------------------------------- save
    def save(self, path: str | os.PathLike, safe_serialization: bool = True) -> None:
        """Write a sentence-transformers folder (loads in sentence-transformers with the same vectors)."""
        from st_plugins.core.saving import save_bi_encoder

        save_bi_encoder(self, Path(path))

    save_pretrained = save

    def __repr__(self) -> str:
        steps = ", ".join(s.modes.__repr__() if isinstance(s, PoolingSpec) else type(s).__name__ if not isinstance(s, str) else s
                          for s in self.spec.steps)
        return (f"SentenceTransformer({self.model_name_or_path!r}, dim={self.get_embedding_dimension()}, "
                f"max_seq_length={self.max_seq_length}, steps=[{steps}], device={str(self.device)!r})")
