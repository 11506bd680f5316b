"""The bi-encoder: sentence-transformers' ``SentenceTransformer`` API, on the torch-free runtime by default.

``encode`` tokenizes once, batches by token length and runs the model's cached graph (onnxruntime +
numpy) on the CPU; the torch engine (:mod:`st_plugins.core.torch_models`) loads only when something
needs it (see :mod:`st_plugins.core.encoder`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from st_plugins.core.compat import refuse_unsupported, renamed_kwargs
from st_plugins.core.encoder import Encoder, token_limit
from st_plugins.core.quantization import PRECISIONS, quantization_ranges, quantize_embeddings
from st_plugins.core.resolve import resolve_model_path
from st_plugins.core.runtime.engines import OrtBiEngine
from st_plugins.core.runtime.loop import in_input_order
from st_plugins.core.runtime.pooling import normalize
from st_plugins.core.extras import torch_installed
from st_plugins.core.similarity import SimilarityFunction
from st_plugins.core.spec import DenseSpec, ModelSpec, PoolingSpec, read_spec
from st_plugins.core.validation import as_text_list, check_choice, check_device, check_positive_int, check_text
from st_plugins.errors import InputTypeError, InputValueError, UnsafeCheckpointError

__all__ = ["SentenceTransformer", "DEFAULT_MODEL"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
OUTPUT_VALUES = ("sentence_embedding", "token_embeddings", None)
_FP32 = (None, "float32", "torch.float32")


def _runtime_can_serve(model_kwargs: dict | None, config_kwargs: dict | None, trust_remote_code: bool) -> bool:
    """The folder's weights load as they are (fp32, no config changes, no remote code): a graph can serve them."""
    kwargs = dict(model_kwargs or {})
    dtype = kwargs.pop("dtype", kwargs.pop("torch_dtype", None))
    kwargs.pop("attn_implementation", None)  # same math, same graph
    return not kwargs and not config_kwargs and not trust_remote_code and str(dtype) in map(str, _FP32)


class SentenceTransformer(Encoder):
    """Embed texts into fixed-size vectors; drop-in for ``sentence_transformers.SentenceTransformer``.

    Args:
        model_name_or_path: A folder, a registered name (``"all-MiniLM-L6-v2"``, the packaged default)
            or a hub id found in the hub cache.
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available, else cpu).
        prompts: ``{name: prompt}`` merged over the model's own prompts.
        default_prompt_name: Prompt used by :meth:`encode` when none is given.
        similarity_fn_name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        cache_folder: Hub cache folder.
        trust_remote_code: Allow model code from the folder (off by default; runs on torch).
        revision: Hub revision.
        local_files_only: Never touch the network.
        truncate_dim: Keep only the first ``truncate_dim`` dimensions (Matryoshka models).
        model_kwargs: ``dtype`` (``"float32"``, ``"bfloat16"``, ...) and ``attn_implementation``.
        processor_kwargs: Passed to the tokenizer (``tokenizer_kwargs``, the old name, is accepted too).
        config_kwargs: Passed to the transformers config (loads the torch engine).
        token / use_auth_token: Hub token (``use_auth_token`` is the old name).
        modules: Not supported (build the model with sentence-transformers and load the saved folder).
        model_card_data: Kept as :attr:`model_card_data`; st_plugins writes no model card.
        allow_pickle: Accept ``pytorch_model.bin`` checkpoints (unsafe; off by default).
        backend: ``"auto"`` (default: the runtime's exact fp32 graph on the CPU, built once per machine
            and model, else torch), ``"torch"``, ``"onnx"`` (exact, CPU), ``"bf16"`` (torch bfloat16
            autocast) or ``"int8"`` (CPU). Training (``model(features)``) always runs torch.

    Example:
        >>> model = SentenceTransformer("all-MiniLM-L6-v2", device="cpu")
        >>> model.encode(["The weather is lovely today."]).shape
        (1, 384)
    """

    _kind = "bi"
    _allowed = ("auto", "torch", "onnx", "bf16", "int8")

    def __new__(cls, model_name_or_path: str | os.PathLike | None = None, *args: Any, **kwargs: Any) -> SentenceTransformer:
        """An image-text folder gives a :class:`~st_plugins.core.multimodal.MultimodalSentenceTransformer`."""
        if cls is SentenceTransformer and model_name_or_path is not None:
            from st_plugins.core.multimodal import MultimodalSentenceTransformer, image_text_root

            if image_text_root(model_name_or_path, kwargs):
                return super().__new__(MultimodalSentenceTransformer)
        return super().__new__(cls)

    @renamed_kwargs(tokenizer_kwargs="processor_kwargs")
    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        *,
        modules: Any = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        use_auth_token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: Any = None,
        backend: str = "auto",
        similarity_fn_name: str | SimilarityFunction | None = None,
        truncate_dim: int | None = None,
        allow_pickle: bool = False,
    ) -> None:
        refuse_unsupported(modules=modules)
        token = token if token is not None else use_auth_token
        tokenizer_kwargs = processor_kwargs
        self.model_card_data = model_card_data
        root = resolve_model_path(
            model_name_or_path if model_name_or_path is not None else DEFAULT_MODEL,
            cache_folder=cache_folder, revision=revision, local_files_only=local_files_only, token=token, kind="bi",
        )
        self.model_name_or_path = str(model_name_or_path or DEFAULT_MODEL)
        self.spec: ModelSpec = read_spec(root)
        for step in self.spec.steps:  # refused here, before the runtime builds a graph of it
            if isinstance(step, DenseSpec) and not step.activation.startswith("torch.") and not trust_remote_code:
                raise UnsafeCheckpointError(
                    f"Activation {step.activation!r} in {step.path / 'config.json'} is not a torch module, and "
                    "importing it runs code from outside torch; pass `trust_remote_code=True` to import it.")
        self._load_settings = (model_kwargs, config_kwargs, trust_remote_code, allow_pickle, tokenizer_kwargs)
        if prompts is not None and not (isinstance(prompts, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in prompts.items())):
            raise InputTypeError(f"`prompts` must be a dict of str to str, e.g. {{'query': 'query: '}}; got {prompts!r:.80}.")
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
        self._tokenizers: dict[Any, Any] = {}
        self._explicit_max, self._token_limit = None, None
        served = _runtime_can_serve(model_kwargs, config_kwargs, trust_remote_code)
        self._setup(root, backend, device, served, allow_pickle)

    # ----------------------------------------------------------------- engines (see Encoder)
    def _load_torch(self) -> Any:
        from st_plugins.core.torch_models import TorchBiEncoder

        model_kwargs, config_kwargs, trust_remote_code, allow_pickle, _ = self._load_settings
        return TorchBiEncoder.load(self.spec, model_kwargs, config_kwargs, trust_remote_code, allow_pickle)

    def _graph_engine(self, graph: Any) -> OrtBiEngine:
        if graph.folder not in self._engines:
            self._engines[graph.folder] = OrtBiEngine(graph, self.spec)
        return self._engines[graph.folder]

    @property
    def auto_model(self) -> Any:
        """The transformers model (loads the torch engine)."""
        return self._handed_out().auto_model

    @property
    def heads(self) -> Any:
        """The Dense / Normalize modules after pooling (loads the torch engine)."""
        return self._handed_out().heads

    # ----------------------------------------------------------------- properties
    @property
    def modalities(self) -> tuple[str, ...]:
        """The input kinds :meth:`encode` takes: ``("text",)`` (image-text models: ``("text", "image")``)."""
        return ("text",)

    max_seq_length = token_limit("max_seq_length", "Inputs longer than this many tokens are truncated.")

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
        dim = self.spec.dimension
        return min(dim, self.truncate_dim) if self.truncate_dim else dim

    get_sentence_embedding_dimension = get_embedding_dimension

    def _check_truncate_dim(self, truncate_dim: int | None) -> int | None:
        if truncate_dim is None:
            return None
        check_positive_int(truncate_dim, "truncate_dim")
        if truncate_dim > self.spec.dimension:
            raise InputValueError(
                f"`truncate_dim` must be at most the embedding dimension {self.spec.dimension}; got {truncate_dim}."
            )
        return truncate_dim

    # ----------------------------------------------------------------- training hooks (torch)
    def tokenize(self, texts: list[str], prompt: str | None = None) -> dict[str, Any]:
        """Padded features (CPU tensors) for ``texts`` (with ``prompt`` prepended), as :meth:`forward` expects."""
        import torch

        tokenizer = self._torch_tokenizer() if self._torch is not None else self._engine()[1]
        full = [prompt + t for t in texts] if prompt else list(texts)
        features: dict[str, Any] = {k: torch.from_numpy(v) for k, v in tokenizer.batch(tokenizer.encode(full)).items()} if full else {}
        if prompt:
            features["prompt_length"] = tokenizer.prompt_length(prompt)
        return features

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        """Token embeddings -> pooling -> Dense/Normalize heads in torch (differentiable; training)."""
        return self._handed_out()(features)

    # ----------------------------------------------------------------- encode
    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            if not isinstance(prompt, str):
                raise InputValueError(f"`prompt` must be a str; got {type(prompt).__name__}.")
            return check_text(prompt, "prompt")
        if prompt_name is not None:
            if not isinstance(prompt_name, str) or prompt_name not in self.prompts:
                raise InputValueError(
                    f"`prompt_name` {prompt_name!r} is not one of this model's prompts {sorted(self.prompts)}. "
                    "Pass one of them, or pass `prompt=` with the text to prepend."
                )
            return check_text(self.prompts[prompt_name], f"prompts[{prompt_name!r}]")
        if self.default_prompt_name is not None:
            return check_text(self.prompts[self.default_prompt_name], f"prompts[{self.default_prompt_name!r}]")
        return None

    def _run(self, texts: list[str], prompt: str | None, batch_size: int, show: bool, device: str | None,
             tokens: bool) -> tuple[np.ndarray, list[np.ndarray] | None, list[Any]]:
        engine, tokenizer = self._engine(device)
        encodings = tokenizer.encode([prompt + t for t in texts] if prompt else texts)
        prompt_length = tokenizer.prompt_length(prompt) if prompt else None
        stream = engine.stream(tokenizer.batches(encodings, batch_size), prompt_length, tokens)
        emb, rows = in_input_order(stream, len(texts), show, "text", keep=(True, tokens))
        return emb, rows, encodings

    @renamed_kwargs(sentences="inputs")
    def encode(
        self,
        inputs: str | list[str],
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
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        *,
        ranges: np.ndarray | None = None,
    ) -> Any:
        """Embed one text (1-D result) or a list of texts (2-D result), in input order.

        Args:
            inputs: A str or a list of str (empty strings are fine; over-long texts are truncated);
                ``sentences=`` (the old name) is accepted too.
            prompt_name: Key of :attr:`prompts` whose text is prepended.
            prompt: Text to prepend (wins over ``prompt_name``).
            batch_size: Texts per forward pass (batches are formed by token length).
            show_progress_bar: Show a tqdm bar.
            output_value: ``"sentence_embedding"``, ``"token_embeddings"`` or ``None`` (all outputs).
            precision: ``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"``.
            convert_to_numpy: Return a numpy array (default).
            convert_to_tensor: Return one torch tensor (wins over ``convert_to_numpy``; imports torch); a numpy
                array when torch is not installed.
            device: Run on this device; the model itself stays where it is.
            normalize_embeddings: L2-normalize the returned vectors.
            truncate_dim: Keep the first ``truncate_dim`` dimensions.
            pool: Not supported (sentence-transformers' multi-process pool): one process already uses
                every core; scale out with :mod:`st_plugins.ray`.
            chunk_size: Only meaningful with ``pool``; ignored.
            ranges: int8/uint8 calibration ranges ``(2, dim)``; default: the model's
                :attr:`quantization_ranges`, else the batch itself, else :meth:`calibrate_quantization`.

        Returns:
            ``np.ndarray`` of shape ``(n, dim)`` (or ``(dim,)`` for a str) unless asked otherwise.

        Raises:
            InputTypeError: ``None``, bytes, nested lists or other non-str items (names the index).
            InputValueError: ``batch_size <= 0``, unknown ``prompt_name``, precision or output_value,
                ``truncate_dim`` larger than the dimension.
        """
        refuse_unsupported(pool=pool)
        texts, single = as_text_list(inputs, "inputs")
        batch_size = check_positive_int(batch_size, "batch_size")
        device = check_device(device)
        check_choice(precision, PRECISIONS, "precision")
        check_choice(output_value, OUTPUT_VALUES, "output_value")
        truncate_dim = self._check_truncate_dim(truncate_dim) or self.truncate_dim
        prompt_text = self._resolve_prompt(prompt, prompt_name)
        if output_value != "sentence_embedding":
            results = self._token_outputs(texts, prompt_text, batch_size, bool(show_progress_bar), device, output_value)
            return results[0] if single else results
        if not texts:
            dim = min(self.spec.dimension, truncate_dim or self.spec.dimension)
            return self._as_requested(np.empty((0, dim), dtype=np.float32),
                                      convert_to_tensor, convert_to_numpy, device)
        emb = self._run(texts, prompt_text, batch_size, bool(show_progress_bar), device, False)[0]
        if truncate_dim:
            emb = emb[:, :truncate_dim]
        if normalize_embeddings:
            emb = normalize(emb)
        if precision != "float32":
            emb = self._quantize(emb, precision, ranges, prompt_text, truncate_dim, normalize_embeddings)
        result = self._as_requested(emb, convert_to_tensor, convert_to_numpy, device)
        return result[0] if single else result

    def _as_requested(self, emb: np.ndarray, to_tensor: bool, to_numpy: bool, device: str | None) -> Any:
        if not to_tensor and to_numpy:
            return emb
        if not torch_installed():  # the plain install: numpy stands in for tensors (util takes either)
            return emb if to_tensor else list(emb)
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(emb))
        if emb.dtype == np.float32:
            tensor = tensor.to(device or self._device)
        return tensor if to_tensor else list(tensor)

    def _token_outputs(self, texts: list[str], prompt: str | None, batch_size: int, show: bool, device: str | None,
                       output_value: str | None) -> list[Any]:
        import torch

        if not texts:
            return []
        emb, rows, encodings = self._run(texts, prompt, batch_size, show, device, True)
        if output_value == "token_embeddings":
            return [torch.from_numpy(np.ascontiguousarray(r)) for r in rows]
        return [{"input_ids": torch.tensor(e.ids), "attention_mask": torch.tensor(e.attention_mask),
                 "token_embeddings": torch.from_numpy(np.ascontiguousarray(r)), "sentence_embedding": torch.from_numpy(v)}
                for e, r, v in zip(encodings, rows, emb)]

    def _quantize(self, emb: np.ndarray, precision: str, ranges: Any, prompt: str | None,
                  truncate_dim: int | None, normalize: bool) -> np.ndarray:
        if precision.endswith("int8") and ranges is None:
            ranges = self.quantization_ranges
            if ranges is None and len(emb) < 2:  # one vector cannot calibrate itself
                key = (prompt, normalize)
                if key not in self._builtin_ranges:
                    self._builtin_ranges[key] = self.calibrate_quantization(
                        prompt=prompt, normalize_embeddings=normalize, store=False)
                ranges = self._builtin_ranges[key]
            if ranges is not None:
                ranges = np.asarray(ranges)[:, : emb.shape[1]]
        return quantize_embeddings(emb, precision, ranges=ranges)

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

    @renamed_kwargs(sentences="inputs")
    def encode_query(
        self,
        inputs: str | list[str],
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
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """:meth:`encode` with the model's ``"query"`` prompt unless another is given (``kwargs``: ``ranges``)."""
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(inputs, prompt_name, prompt, batch_size, show_progress_bar, output_value, precision,
                           convert_to_numpy, convert_to_tensor, device, normalize_embeddings, truncate_dim, pool,
                           chunk_size, **kwargs)

    @renamed_kwargs(sentences="inputs")
    def encode_document(
        self,
        inputs: str | list[str],
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
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """:meth:`encode` with the model's ``"document"`` prompt (or ``"passage"``/``"corpus"``)."""
        if prompt_name is None and prompt is None:
            prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.prompts), None)
        return self.encode(inputs, prompt_name, prompt, batch_size, show_progress_bar, output_value, precision,
                           convert_to_numpy, convert_to_tensor, device, normalize_embeddings, truncate_dim, pool,
                           chunk_size, **kwargs)

    # ----------------------------------------------------------------- similarity
    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        """Matrix of :attr:`similarity_fn_name` scores between two sets of embeddings (a Tensor)."""
        return SimilarityFunction.to_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        """Scores between ``embeddings1[i]`` and ``embeddings2[i]``."""
        return SimilarityFunction.to_similarity_pairwise_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    # ----------------------------------------------------------------- save
    def save(self, path: str | os.PathLike, model_name: str | None = None, create_model_card: bool = True,
             train_datasets: list[str] | None = None, safe_serialization: bool = True) -> None:
        """Write a sentence-transformers folder (loads in sentence-transformers with the same vectors).

        Weights are always safetensors; ``model_name``, ``create_model_card`` and ``train_datasets`` (model
        card settings in sentence-transformers) are accepted and unused: st_plugins writes no model card.
        """
        from st_plugins.core.saving import save_bi_encoder

        save_bi_encoder(self, Path(path))

    save_pretrained = save

    def __repr__(self) -> str:
        steps = ", ".join(repr(s.modes) if isinstance(s, PoolingSpec) else s if isinstance(s, str) else type(s).__name__
                          for s in self.spec.steps)
        return (f"SentenceTransformer({self.model_name_or_path!r}, dim={self.get_embedding_dimension()}, "
                f"max_seq_length={self.max_seq_length}, steps=[{steps}], device={self._device!r}, "
                f"backend={self.backend!r})")
