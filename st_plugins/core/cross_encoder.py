"""The cross-encoder: sentence-transformers' ``CrossEncoder`` API (predict, rank, save), on the runtime by default.

A cross-encoder reads a (query, document) pair jointly and returns one score (one label) or one score
per label. Tokenization, batching, engine choice and the batch loop are the bi-encoder's
(:mod:`st_plugins.core.runtime`, :mod:`st_plugins.core.encoder`); the folder's description is
:class:`~st_plugins.core.spec.CrossSpec`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.core.bi_encoder import _runtime_can_serve
from st_plugins.core.compat import legacy_positional, refuse_unsupported, renamed_kwargs
from st_plugins.core.encoder import Encoder, token_limit
from st_plugins.core.resolve import resolve_model_path
from st_plugins.core.runtime.engines import OrtCrossEngine
from st_plugins.core.runtime.heads import ACTIVATIONS
from st_plugins.core.runtime.loop import in_input_order
from st_plugins.core.extras import torch_installed
from st_plugins.core.spec import LEGACY_ACTIVATION_KEY, CrossSpec, read_cross_spec
from st_plugins.core.validation import as_pair_list, as_text_list, check_device, check_positive_int, check_text
from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["CrossEncoder", "activation_name"]


def _locate(name: Any, cache_folder: Any, revision: str | None, local_files_only: bool) -> Path:
    """:func:`resolve_model_path` for a cross-encoder: a bare name is also tried as hub repo ``cross-encoder/<name>``."""
    return resolve_model_path(name, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only,
                              kind="cross", hub_namespaces=("sentence-transformers", "cross-encoder"))


def activation_name(fn: Any) -> str | None:
    """Dotted class path of an activation module (what config files store), else ``None`` (a plain function).

    Example:
        >>> import torch
        >>> activation_name(torch.nn.Sigmoid())
        'torch.nn.modules.activation.Sigmoid'
    """
    cls = fn if isinstance(fn, type) else type(fn)
    if not any(c.__name__ == "Module" and c.__module__.startswith("torch.nn") for c in cls.__mro__):
        return None
    return f"{cls.__module__}.{cls.__name__}"


def _folder_activation(spec: CrossSpec, num_labels: int, trust_remote_code: bool) -> str:
    """The activation's dotted name as sentence-transformers picks it: config_sentence_transformers.json,
    then config.json, else Sigmoid for one label and Identity otherwise (non-torch names need trust)."""
    for source, dotted in (("config_sentence_transformers.json", spec.st_activation), ("config.json", spec.hf_activation)):
        if not dotted:
            continue
        if dotted.startswith("torch.") or trust_remote_code:
            return dotted
        warnings.warn(
            f"Activation {dotted!r} from {source} is not a torch class and was not imported; using the default "
            "activation instead. Pass `trust_remote_code=True` to import it.", UserWarning, stacklevel=4)
    return "torch.nn.modules.activation.Sigmoid" if num_labels == 1 else "torch.nn.modules.linear.Identity"


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class CrossEncoder(Encoder):
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
        processor_kwargs: Passed to ``AutoTokenizer.from_pretrained`` (``tokenizer_kwargs``, the old name, works too).
        config_kwargs: Passed to ``AutoConfig.from_pretrained`` (e.g. ``classifier_dropout``).
        modules, prompts, default_prompt_name, keep_in_fp32_modules: Not supported; must stay unset.
        model_card_data: Kept as :attr:`model_card_data`; st_plugins writes no model card.
        allow_pickle: Accept ``pytorch_model.bin`` checkpoints (unsafe; off by default).
        backend: ``"auto"`` (default: the runtime's exact graph on the CPU, else torch), ``"torch"``,
            ``"onnx"`` (exact, CPU) or ``"bf16"``.

    As in sentence-transformers, every option but the model is keyword-only, except the old positional order
    ``CrossEncoder(model, num_labels, max_length, activation_fn, device)``, which still works.

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

    _kind = "cross"
    _allowed = ("auto", "torch", "onnx", "bf16")  # int8 is a bi-encoder path only

    @renamed_kwargs(model_name="model_name_or_path", automodel_args="model_kwargs", tokenizer_args="processor_kwargs",
                    tokenizer_kwargs="processor_kwargs", config_args="config_kwargs", cache_dir="cache_folder",
                    default_activation_function="activation_fn")
    @legacy_positional(("num_labels", "max_length", "activation_fn", "device"))
    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        *,
        modules: Any = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | os.PathLike | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: Any = None,
        backend: str = "auto",
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn: Callable | None = None,
        keep_in_fp32_modules: list[str] | None = None,
        allow_pickle: bool = False,
    ) -> None:
        refuse_unsupported(modules=modules, prompts=prompts or None, default_prompt_name=default_prompt_name,
                           keep_in_fp32_modules=keep_in_fp32_modules)
        if model_name_or_path is None:
            raise InputValueError("`model_name_or_path` is required: pass a cross-encoder folder, a registered name "
                                  "or a hub id in the hub cache.")
        tokenizer_kwargs, self.model_card_data = processor_kwargs, model_card_data
        for value, name in ((num_labels, "num_labels"), (max_length, "max_length")):
            if value is not None:
                check_positive_int(value, name)
        if activation_fn is not None and not callable(activation_fn):
            raise InputTypeError(
                f"`activation_fn` must be callable (e.g. torch.nn.Sigmoid()); got {type(activation_fn).__name__}."
            )
        self.model_name_or_path = str(model_name_or_path)
        root = _locate(model_name_or_path, cache_folder, revision, local_files_only)
        self.spec = read_cross_spec(root)
        self.num_labels = int(num_labels or self.spec.num_labels)
        self._load_settings = (model_kwargs, self.spec.config_kwargs(config_kwargs, num_labels), trust_remote_code,
                               allow_pickle, tokenizer_kwargs)
        self._explicit_max = max_length or (tokenizer_kwargs or {}).get("model_max_length")
        self._token_limit = None
        self._tokenizers: dict[Any, Any] = {}
        self._activation_path = _folder_activation(self.spec, self.num_labels, trust_remote_code)
        self._activation = activation_fn
        served = (_runtime_can_serve(model_kwargs, config_kwargs, trust_remote_code) and self.spec.is_classifier
                  and self.num_labels == self.spec.num_labels)
        self._setup(root, backend, device, served, allow_pickle)

    # ----------------------------------------------------------------- engines (see Encoder)
    def _load_torch(self) -> Any:
        from st_plugins.core.torch_models import TorchCrossEncoder

        model_kwargs, config_kwargs, trust_remote_code, allow_pickle, _ = self._load_settings
        module = TorchCrossEncoder.load(self.spec.transformer_path, model_kwargs, config_kwargs, trust_remote_code,
                                        allow_pickle)
        if hasattr(module.model.config, LEGACY_ACTIVATION_KEY):
            delattr(module.model.config, LEGACY_ACTIVATION_KEY)
        return module

    def _graph_engine(self, graph: Any) -> OrtCrossEngine:
        return OrtCrossEngine(graph)

    @property
    def model(self) -> Any:
        """The transformers sequence-classification model (loads the torch engine)."""
        return self._handed_out().model

    @property
    def config(self) -> Any:
        """The transformers config (``config.id2label`` names the labels; loads the torch engine)."""
        return self.model.config

    # ----------------------------------------------------------------- properties
    max_length = token_limit("max_length", "Pairs longer than this many tokens are truncated (``longest_first``).")

    max_seq_length = max_length

    @property
    def activation_fn(self) -> Callable:
        """Applied to the logits by :meth:`predict` (a torch module unless set to another callable)."""
        if self._activation is None:
            from st_plugins.core.heads import build_activation

            self._activation = build_activation(self._activation_path, trust_remote_code=True)
        return self._activation

    @activation_fn.setter
    def activation_fn(self, value: Callable) -> None:
        self._activation = value
        self._activation_path = activation_name(value) or self._activation_path

    def activate(self, logits: np.ndarray, activation_fn: Callable | None = None) -> np.ndarray:
        """``activation_fn`` (default: :attr:`activation_fn`) on float32 numpy logits.

        torch's standard activations (Sigmoid, Tanh, ReLU, GELU, Identity) run in numpy; any other
        callable gets a tensor, as in sentence-transformers.

        Example:
            >>> CrossEncoder("all-MiniLM-L6-v2", device="cpu").activate(np.zeros((1, 1), dtype=np.float32)).tolist()
            [[0.5]]
        """
        fn = activation_fn if activation_fn is not None else self._activation
        name = self._activation_path if fn is None else activation_name(fn)
        logits = np.asarray(logits, dtype=np.float32)
        if name in ACTIVATIONS:
            return ACTIVATIONS[name](logits)
        import torch

        return np.asarray((fn or self.activation_fn)(torch.from_numpy(logits)).detach().float().cpu().numpy())

    def predict_logits(self, sentences: Any, batch_size: int = 32, show_progress_bar: bool | None = None,
                       device: str | None = None) -> np.ndarray:
        """Raw float32 logits ``(n, num_labels)`` of (query, document) pairs, in input order (no activation).

        Raises:
            InputTypeError: ``None``, non-pairs or non-str items (names the index).
            InputValueError: ``batch_size`` is not a positive int.
        """
        pairs, _ = as_pair_list(sentences, "sentences")
        batch_size = check_positive_int(batch_size, "batch_size")
        device = check_device(device)
        if not pairs:
            return np.zeros((0, self.num_labels), dtype=np.float32)
        engine, tokenizer = self._engine(device)
        encodings = tokenizer.encode([q for q, _ in pairs], [d for _, d in pairs])
        stream = engine.stream(tokenizer.batches(encodings, batch_size))
        return in_input_order(stream, len(pairs), bool(show_progress_bar), "pair")[0]

    # ----------------------------------------------------------------- training hooks (torch)
    def tokenize_pairs(self, pairs: Any) -> dict[str, Any]:
        """Padded features (CPU tensors) for a list of (query, document) pairs, in input order."""
        import torch

        items, _ = as_pair_list(pairs, "pairs")
        if not items:
            raise InputValueError("`pairs` must hold at least one (query, document) pair; got an empty list.")
        tokenizer = self._torch_tokenizer()
        batch = tokenizer.batch(tokenizer.encode([q for q, _ in items], [d for _, d in items]))
        return {k: torch.from_numpy(v) for k, v in batch.items()}

    def forward(self, features: dict[str, Any]) -> Any:
        module = self._handed_out()
        return module({k: v.to(self.device) for k, v in features.items() if k in module.keys})

    def logits(self, features: dict[str, Any]) -> Any:
        """Float32 logits ``(batch, num_labels)`` for :meth:`tokenize_pairs` features (differentiable)."""
        return self.forward(features)

    # ----------------------------------------------------------------- predict / rank
    def _scores(self, pairs: list[tuple[str, str]], batch_size: int, show: bool, fn: Callable | None,
                softmax: bool, device: str | None) -> np.ndarray:
        scores = self.activate(self.predict_logits(pairs, batch_size, show, device), fn)
        if self.num_labels == 1 and scores.ndim > 1:
            scores = scores[:, 0]
        if softmax and scores.ndim > 1:
            scores = _softmax(scores)
        return scores.astype(np.float32)

    @renamed_kwargs(sentences="inputs")
    def predict(
        self,
        inputs: Any,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable | None = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
    ) -> Any:
        """Score pairs, in input order (batches are formed by token length).

        Args:
            inputs: A list of (query, document) pairs, or one pair (``sentences=``, the old name, works too).
            prompt_name / prompt: Not supported (cross-encoder prompts); must stay ``None``.
            batch_size: Pairs per forward pass.
            show_progress_bar: Show a tqdm bar.
            activation_fn: Used instead of :attr:`activation_fn` (applied to float32 logits).
            apply_softmax: Softmax over labels (multi-label models).
            convert_to_numpy: Return float32 numpy (default); otherwise a list of tensors.
            convert_to_tensor: Return one tensor (wins over ``convert_to_numpy``; imports torch).
            device: Run on this device; the model itself stays where it is.
            pool: Not supported (a multi-process pool); scale out with :mod:`st_plugins.ray`.
            chunk_size: Only meaningful with ``pool``; ignored.

        Returns:
            Shape ``(n,)`` for one label, ``(n, num_labels)`` otherwise (``n`` may be 0); one pair gives a
            numpy float32 scalar (or one row).

        Raises:
            InputTypeError: ``None``, non-pairs or non-str items (names the index).
            InputValueError: ``batch_size`` is not a positive int.
        """
        refuse_unsupported(prompt_name=prompt_name, prompt=prompt, pool=pool)
        pairs, single = as_pair_list(inputs, "inputs")
        batch_size = check_positive_int(batch_size, "batch_size")
        device = check_device(device)
        if activation_fn is not None and not callable(activation_fn):
            raise InputTypeError(f"`activation_fn` must be callable; got {type(activation_fn).__name__}.")
        if pairs:
            scores = self._scores(pairs, batch_size, bool(show_progress_bar), activation_fn, apply_softmax, device)
        else:
            scores = np.zeros((0,) if self.num_labels == 1 else (0, self.num_labels), dtype=np.float32)
        if (convert_to_tensor or not convert_to_numpy) and not torch_installed():  # the plain install: numpy
            out: Any = scores if convert_to_tensor else list(scores)
        elif convert_to_tensor or not convert_to_numpy:
            import torch

            tensor = torch.from_numpy(scores).to(device or self._device)
            out = tensor if convert_to_tensor else list(tensor)
        else:
            out = scores
        return out[0] if single else out

    def rank(
        self,
        query: str,
        documents: list[str],
        top_k: int | None = None,
        return_documents: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable | None = None,
        device: str | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """``[{"corpus_id", "score"[, "text"]}]`` sorted by score, highest first (ties keep input order).

        Raises:
            InputValueError: The model has more than one label, or ``top_k`` is not a positive int.
            InputTypeError: ``query`` is not a str, ``documents`` not a list of str.
        """
        refuse_unsupported(prompt_name=prompt_name, prompt=prompt, pool=pool)
        if self.num_labels != 1:
            labels = list((self.spec.config.get("id2label") or {}).values())
            raise InputValueError(
                f"`rank` needs a model with num_labels=1 (one relevance score); this model has {self.num_labels} "
                f"labels {labels}. Use `predict` on (query, document) pairs instead."
            )
        if not isinstance(query, str):
            raise InputTypeError(f"`query` must be a str; got {type(query).__name__}.")
        check_text(query, "query")
        docs, single = as_text_list(documents, "documents")
        if single:
            raise InputTypeError("`documents` must be a list of str; got a single str. Wrap it in a list.")
        if top_k is not None:
            check_positive_int(top_k, "top_k")
        scores = self.predict([(query, d) for d in docs], batch_size=batch_size, show_progress_bar=show_progress_bar,
                              activation_fn=activation_fn, device=device).tolist()
        hits = [{"corpus_id": i, "score": s} for i, s in enumerate(scores)]
        if return_documents:
            hits = [{**hit, "text": docs[hit["corpus_id"]]} for hit in hits]
        return sorted(hits, key=lambda hit: hit["score"], reverse=True)[:top_k]

    def save(self, path: str | os.PathLike, model_name: str | None = None, create_model_card: bool = True,
             train_datasets: list[str] | None = None, safe_serialization: bool = True) -> None:
        """Write a folder sentence-transformers' ``CrossEncoder`` loads with identical scores (safetensors).

        ``model_name``, ``create_model_card`` and ``train_datasets`` are accepted and unused (no model card).
        """
        from st_plugins.core.saving import save_cross_encoder

        save_cross_encoder(self, Path(path))

    save_pretrained = save

    def __repr__(self) -> str:
        return (f"CrossEncoder({self.model_name_or_path!r}, num_labels={self.num_labels}, "
                f"max_length={self.max_length}, activation_fn={self._activation_path.rsplit('.', 1)[-1]}(), "
                f"device={self._device!r}, backend={self.backend!r})")
