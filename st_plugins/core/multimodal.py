"""Image-text bi-encoders (CLIP-style): texts and images into one vector space, on the torch-free runtime.

``SentenceTransformer(folder)`` returns a :class:`MultimodalSentenceTransformer` when the folder holds an
image-text model in one of the layouts sentence-transformers 6.2 loads:

- **current**: ``modules.json`` with one ``Transformer`` module whose ``sentence_bert_config.json`` has a
  ``modality_config`` with an ``image`` entry (what sentence-transformers saves for CLIP today);
- **legacy**: ``modules.json`` with ``sentence_transformers.models.CLIPModel`` (as ``clip-ViT-B-32``);
- **plain**: a transformers folder (``config.json`` model type ``clip``, ``siglip`` or
  ``vision-text-dual-encoder``) with its tokenizer and image processor.

An optional ``Normalize`` module may follow. The text tower returns ``get_text_features``, the vision tower
``get_image_features`` (projected, as sentence-transformers returns them). Both run from ONNX graphs cached
once per machine (exported with torch in a child process on first use, like the text models the safetensors
builder does not cover); later processes need neither torch nor transformers. Images are preprocessed by
:mod:`st_plugins.core.runtime.images` (Pillow + numpy), equal to the folder's image processor.

SigLIP texts are padded to the maximum length (as SigLIP was trained; see :mod:`.multimodal_text`, which also
applies a folder's ``processing_kwargs``), and its ``spiece.model`` is read without transformers
(:mod:`st_plugins.core.runtime.sentencepiece`). SigLIP 2 (variable patch counts) is refused with
``ModelFormatError``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from st_plugins.core.bi_encoder import SentenceTransformer
from st_plugins.core.compat import refuse_unsupported, renamed_kwargs
from st_plugins.core.images import is_image, load_image
from st_plugins.core.multimodal_text import (TextSettings, fixed_length, padding_sensitive, sentence_transformers_order,
                                             text_settings, text_tokenizer, tokenizer_outputs)
from st_plugins.core.resolve import resolve_model_path
from st_plugins.core.runtime.pooling import normalize
from st_plugins.core.similarity import SimilarityFunction
from st_plugins.core.validation import check_choice, check_positive_int, check_text
from st_plugins.errors import BackendError, InputTypeError, InputValueError, ModelFormatError

__all__ = ["MultimodalSentenceTransformer", "ImageTextSpec", "read_image_text_spec", "IMAGE_TEXT_TYPES",
           "publish_towers", "TowerGraphs"]

#: transformers model types served (their models have ``get_text_features`` and ``get_image_features``)
IMAGE_TEXT_TYPES = ("clip", "siglip", "vision-text-dual-encoder")
_REFUSED_TYPES = {"siglip2": "SigLIP 2"}
_LEGACY = ("sentence_transformers.models.CLIPModel", "sentence_transformers.models.CLIPModel.CLIPModel",
           "sentence_transformers.sentence_transformer.modules.CLIPModel",
           "sentence_transformers.sentence_transformer.modules.clip_model.CLIPModel")
_TRANSFORMER = ("sentence_transformers.models.Transformer", "sentence_transformers.base.modules.transformer.Transformer",
                "sentence_transformers.sentence_transformer.modules.Transformer",
                "sentence_transformers.base.modules.Transformer")
VARIANT = "mm2-onnx"  # 2: text padding, padding side and the tokenizer's features in the recipe


@dataclass
class ImageTextSpec:
    """What an image-text folder holds."""

    root: Path
    model_dir: Path
    layout: str
    config: dict[str, Any]
    max_seq_length: int | None = None
    normalize: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None
    text: TextSettings = field(default_factory=TextSettings)  # a current-layout folder's processing_kwargs

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type"))

    @property
    def fixed_length(self) -> bool:
        """Whether texts are padded to the maximum length (SigLIP, or a folder's ``processing_kwargs``)."""
        return fixed_length(self.model_type, self.text)

    @property
    def dimension(self) -> int:
        if self.model_type == "siglip":  # the text head maps to projection_size (default: the hidden size)
            text = self.config.get("text_config") or {}
            return int(text.get("projection_size") or text.get("hidden_size") or 768)
        return int(self.config.get("projection_dim") or 512)

    @property
    def transformer_path(self) -> Path:
        return self.model_dir


def _json(path: Path) -> Any:
    from st_plugins.core.spec import read_json

    return read_json(path)


def _check_type(config: Any, path: Path) -> None:
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind in _REFUSED_TYPES:
        raise ModelFormatError(f"{path}: {_REFUSED_TYPES[kind]} models are not served yet (their image tower takes a "
                               "variable number of patches); use sentence-transformers for them.")


def read_image_text_spec(root: str | os.PathLike) -> ImageTextSpec | None:
    """The image-text spec of ``root``, or ``None`` when ``root`` is not an image-text model (a text model).

    Raises:
        ModelFormatError: An image-text folder this runtime cannot serve (SigLIP 2, modules after the model other than
            ``Normalize``), or malformed JSON.
    """
    root = Path(root)
    st_config = _json(root / "config_sentence_transformers.json") if (root / "config_sentence_transformers.json").is_file() else {}
    common = {"prompts": dict(st_config.get("prompts") or {}), "default_prompt_name": st_config.get("default_prompt_name"),
              "similarity_fn_name": st_config.get("similarity_fn_name")}
    modules_path = root / "modules.json"
    if not modules_path.is_file():
        if not (root / "config.json").is_file():
            return None
        config = _json(root / "config.json")
        if not isinstance(config, dict):
            return None
        _check_type(config, root / "config.json")
        if config.get("model_type") not in IMAGE_TEXT_TYPES:
            return None
        return ImageTextSpec(root, root, "plain", config, **common)
    modules = _json(modules_path)
    if not isinstance(modules, list) or not modules or not all(isinstance(m, dict) for m in modules):
        return None
    first = modules[0]
    model_dir = root / str(first.get("path", ""))
    kind = str(first.get("type", ""))
    if kind in _LEGACY:
        layout = "legacy"
    elif kind in _TRANSFORMER and (model_dir / "sentence_bert_config.json").is_file():
        bert_config = _json(model_dir / "sentence_bert_config.json")
        modality = bert_config.get("modality_config") if isinstance(bert_config, dict) else None
        if not (isinstance(modality, dict) and "image" in modality):
            if (model_dir / "config.json").is_file():
                _check_type(_json(model_dir / "config.json"), model_dir / "config.json")
            return None
        layout = "current"
        common["max_seq_length"] = bert_config.get("max_seq_length")
        common["text"] = text_settings(bert_config, model_dir / "sentence_bert_config.json")
    else:
        return None
    config = _json(model_dir / "config.json")
    if not isinstance(config, dict):
        raise ModelFormatError(f"{model_dir / 'config.json'} must hold a JSON object, not {type(config).__name__}. "
                               "Repair or re-save the model.")
    _check_type(config, model_dir / "config.json")
    if config.get("model_type") not in IMAGE_TEXT_TYPES:
        raise ModelFormatError(f"{model_dir / 'config.json'}: model type {config.get('model_type')!r} is not an "
                               f"image-text model served here ({list(IMAGE_TEXT_TYPES)}).")
    rest = [str(m.get("type", "")) for m in modules[1:]]
    if any(not t.endswith("Normalize") for t in rest):
        raise ModelFormatError(f"{modules_path}: modules after the image-text model ({rest}) are not supported; only "
                               "Normalize may follow it.")
    return ImageTextSpec(root, model_dir, layout, config, normalize=bool(rest), **common)


# ----------------------------------------------------------------------------- graphs
class TowerGraphs:
    """The cached graphs of an image-text model: text and vision runners, tokenizer, image processor."""

    def __init__(self, folder: Path, num_threads: int | None = None) -> None:
        from st_plugins.core.runtime import store
        from st_plugins.core.runtime.images import ImageProcessor, ImageSettings
        from st_plugins.core.runtime.session import OrtRunner
        from st_plugins.core.runtime.tokenizer import TextTokenizer, TokenizerFacts

        self.folder = Path(folder)
        self.meta = store.read_meta(self.folder)
        optimized = bool(self.meta.get("optimized"))
        self.text = OrtRunner(self.folder / "text.onnx", num_threads, optimized=optimized)
        self.vision = OrtRunner(self.folder / "vision.onnx", num_threads, optimized=optimized)
        facts = TokenizerFacts.from_json(self.meta["tokenizer"])
        self.tokenizer = TextTokenizer((self.folder / "tokenizer.json").read_text(encoding="utf-8"), facts,
                                       int(self.meta["max_length"]),
                                       fixed_length=self.meta.get("text_padding") == "max_length")
        self.processor = ImageProcessor(ImageSettings.from_json(self.meta["image"]))


_OPEN: dict[Path, TowerGraphs] = {}
_OPEN_LOCK = threading.Lock()


def _tokenizer_of(spec: ImageTextSpec) -> Any:
    return text_tokenizer(spec.model_dir, spec.config, spec.max_seq_length, spec.text)


def _write(spec: ImageTextSpec, folder: Path, allow_pickle: bool) -> dict[str, Any]:
    from st_plugins.core.backends.towers import write_towers
    from st_plugins.core.runtime.images import ImageProcessor, ImageSettings

    tokenizer = _tokenizer_of(spec)
    settings = ImageSettings.from_folder(spec.model_dir)
    (folder / "tokenizer.json").write_text(tokenizer.backend_json, encoding="utf-8")
    padding = "max_length" if tokenizer.fixed_length else "longest"
    tokenizer.fixed_length = False  # the export is checked on batches of mixed widths: the graph stays dynamic
    info = write_towers(spec.model_dir, tokenizer, ImageProcessor(settings), folder, allow_pickle,
                        tokenizer_outputs(spec.model_dir))
    return {"variant": VARIANT, "tokenizer": tokenizer.facts.to_json(), "max_length": tokenizer.max_length,
            "text_padding": padding, "image": settings.to_json(), **info}


def publish_towers(root: Path, allow_pickle: bool = False) -> Path:
    """Export ``root``'s two towers with torch into the disk cache (this process imports torch)."""
    from st_plugins.core.runtime import store

    spec = read_image_text_spec(root)
    if spec is None:
        raise ModelFormatError(f"{root} is not an image-text model.")
    target = store.artifact_dir(store.content_hash(root), VARIANT)
    if store.is_complete(target):
        return target
    return store.publish(target, lambda tmp: _write(spec, tmp, allow_pickle))


def load_towers(root: Path, allow_pickle: bool = False) -> TowerGraphs:
    """The cached tower graphs of ``root``, exported in a child process (torch) the first time on this machine.

    Raises:
        MissingDependencyError: Not cached and torch is not installed.
        BackendError: The export failed.
    """
    from st_plugins.core.extras import torch_installed, torch_missing
    from st_plugins.core.runtime import store
    from st_plugins.core.runtime.graphs import build_in_child

    target = store.artifact_dir(store.content_hash(root), VARIANT)
    if not store.is_complete(target):
        spec = read_image_text_spec(root)
        if spec is not None:  # the folder's own errors (tokenizer, settings, image processor) typed, from here
            from st_plugins.core.runtime.images import ImageSettings

            _tokenizer_of(spec)
            ImageSettings.from_folder(spec.model_dir)
        if not torch_installed():
            raise torch_missing(f"The image and text graphs of {root} are not cached on this machine and must be "
                                "exported with torch once")
        target = build_in_child(root, "mm", "onnx", allow_pickle)
    with _OPEN_LOCK:
        if target not in _OPEN:
            _OPEN[target] = TowerGraphs(target)
        return _OPEN[target]


# ----------------------------------------------------------------------------- the model
def _split(inputs: Any, name: str) -> tuple[list[Any], bool]:
    """``inputs`` as a list (and whether it was one item); texts and images may be mixed."""
    if isinstance(inputs, (str, os.PathLike, np.ndarray)) or is_image(inputs):
        return [inputs], True
    if isinstance(inputs, dict):
        raise InputTypeError(f"`{name}` must be a text, an image or a list of them; got a dict (multimodal dict "
                             "inputs are not supported: encode the text and the image separately).")
    try:
        items = list(inputs)
    except TypeError:
        raise InputTypeError(f"`{name}` must be a text, an image or a list of them; got {type(inputs).__name__}.") from None
    return items, False


class MultimodalSentenceTransformer(SentenceTransformer):
    """An image-text bi-encoder with sentence-transformers' API: ``encode`` takes texts, images and mixed lists.

    Not constructed directly: ``SentenceTransformer(folder)`` returns one for an image-text folder (see the module
    docstring). ``backend``: ``"auto"`` / ``"onnx"`` (the cached graphs, CPU) or ``"torch"`` (transformers in
    this process).
    """

    _allowed = ("auto", "onnx", "torch")

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
        from st_plugins.core.backbone import check_remote_code, check_weights
        from st_plugins.core.backends import check_backend
        from st_plugins.core.validation import check_device

        refuse_unsupported(modules=modules)
        if model_kwargs or config_kwargs or processor_kwargs:
            raise InputValueError("`model_kwargs`, `config_kwargs` and `processor_kwargs` are not supported for "
                                  "image-text models; load the folder as saved.")
        root = resolve_model_path(model_name_or_path, cache_folder=cache_folder, revision=revision,
                                  local_files_only=local_files_only, token=token if token is not None else use_auth_token,
                                  kind="bi")
        self.model_name_or_path = str(model_name_or_path)
        self.model_card_data = model_card_data
        spec = read_image_text_spec(root)
        if spec is None:
            raise ModelFormatError(f"{root} is not an image-text model.")
        self.spec = spec
        check_weights(spec.model_dir, allow_pickle)
        check_remote_code(spec.model_dir, spec.config, trust_remote_code)
        self.prompts = {"query": "", "document": "", **spec.prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name or spec.default_prompt_name
        self._similarity_fn_name = None
        self.similarity_fn_name = similarity_fn_name or spec.similarity_fn_name
        self.truncate_dim = None
        self.truncate_dim = self._check_truncate_dim(truncate_dim)
        self.quantization_ranges = None
        self._builtin_ranges, self._tokenizers = {}, {}
        self._explicit_max, self._token_limit = None, None
        self._load_settings = (None, None, trust_remote_code, allow_pickle, None)
        self._root, self._allow_pickle, self._served = Path(root), allow_pickle, True
        checked = check_device(device)
        self._device = str(checked or "cpu")
        self._backend = check_backend(backend, self._allowed)
        if self._backend == "onnx" and self._device != "cpu":
            raise InputValueError(f"`backend='onnx'` runs on the CPU only; the model is on {self._device}.")
        self._torch: Any = None
        self._exposed = False
        self._graphs, self._engines, self._copies = {}, {}, {}
        self._lock = threading.RLock()
        self._towers: TowerGraphs | None = None

    # ----------------------------------------------------------------- facts
    @property
    def modalities(self) -> tuple[str, ...]:
        """The input kinds :meth:`encode` takes: ``("text", "image")``."""
        return ("text", "image")

    def get_embedding_dimension(self) -> int:
        dim = self.spec.dimension
        return min(dim, self.truncate_dim) if self.truncate_dim else dim

    get_sentence_embedding_dimension = get_embedding_dimension

    @property
    def max_seq_length(self) -> int:  # type: ignore[override]
        return self._text_tokenizer().max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self._text_tokenizer().max_length = check_positive_int(value, "max_seq_length")

    def _text_tokenizer(self) -> Any:
        """This model's own text tokenizer (``max_seq_length`` changes it, not another instance's)."""
        if "text" not in self._tokenizers:
            shared = self._uses_graphs()
            self._tokenizers["text"] = self._runtime().tokenizer.copy() if shared else _tokenizer_of(self.spec)
        return self._tokenizers["text"]

    # ----------------------------------------------------------------- engines
    def _uses_graphs(self) -> bool:
        from st_plugins.core.encoder import onnx_available

        if self._backend == "torch" or self._device != "cpu" or self._exposed:
            return False
        return self._backend == "onnx" or onnx_available()

    def _runtime(self) -> TowerGraphs:
        if self._towers is None:
            with self._lock:
                if self._towers is None:
                    self._towers = load_towers(self._root, self._allow_pickle)
        return self._towers

    def _graph(self, device: str | None = None) -> Any:
        return self._runtime() if self._uses_graphs() and (device in (None, "cpu")) else None

    def _load_torch(self) -> Any:
        from st_plugins.core.backends.towers import load_image_text_model

        return load_image_text_model(self.spec.model_dir, self._allow_pickle)

    def _processor(self) -> Any:
        if self._uses_graphs():
            return self._runtime().processor
        if "image" not in self._tokenizers:
            from st_plugins.core.runtime.images import ImageProcessor, ImageSettings

            self._tokenizers["image"] = ImageProcessor(ImageSettings.from_folder(self.spec.model_dir))
        return self._tokenizers["image"]

    def _text_rows(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        if self._uses_graphs():
            return self._runtime().text.run(feats)
        import torch

        from st_plugins.core.backends.towers import text_inputs, tower_output

        model = self._torch_module()
        if "features" not in self._tokenizers:
            self._tokenizers["features"] = tokenizer_outputs(self.spec.model_dir)
        names = text_inputs(model, tuple(k for k in feats if k in self._tokenizers["features"]))
        with torch.inference_mode():
            out = model.get_text_features(**{k: torch.from_numpy(feats[k]).to(self._device) for k in names})
        return tower_output(out).float().cpu().numpy()

    def _image_rows(self, pixels: np.ndarray) -> np.ndarray:
        if self._uses_graphs():
            return self._runtime().vision.run({"pixel_values": pixels})
        import torch

        from st_plugins.core.backends.towers import tower_output

        with torch.inference_mode():
            out = self._torch_module().get_image_features(pixel_values=torch.from_numpy(pixels).to(self._device))
        return tower_output(out).float().cpu().numpy()

    # ----------------------------------------------------------------- encode
    def _embed(self, items: list[Any], prompt: str | None, batch_size: int, show: bool) -> np.ndarray:
        from st_plugins.core.runtime.loop import progress

        texts, images = [], []
        for i, item in enumerate(items):
            if isinstance(item, str) and not is_image(item):
                texts.append(i)
            elif is_image(item):
                images.append(i)
            elif item is None or isinstance(item, (bytes, int, float, list, tuple, dict)):
                raise InputTypeError(f"`inputs[{i}]` must be a text (str) or an image (PIL image, image file path, "
                                     f"numpy uint8 array); got {type(item).__name__}.")
            else:
                raise InputTypeError(f"`inputs[{i}]` must be a text (str) or an image; got {type(item).__name__}.")
        for i in texts:
            check_text(items[i], f"inputs[{i}]")
        for i in images:  # the cheap checks before any model work: missing files, URLs, bad arrays
            item = items[i]  # (files are decoded one batch at a time below, never all at once)
            if isinstance(item, np.ndarray) or (isinstance(item, (str, os.PathLike)) and not Path(item).is_file()):
                load_image(item, f"inputs[{i}]")
        out = np.empty((len(items), self.spec.dimension), dtype=np.float32)
        bar = progress(len(items), show, "input")
        try:
            if texts:
                tokenizer = self._text_tokenizer()
                encodings = tokenizer.encode([(prompt or "") + items[i] for i in texts])
                order = None  # where the longest-of-batch padding changes vectors: sentence-transformers' batches
                if padding_sensitive(self.spec.model_type) and not tokenizer.fixed_length:
                    order = sentence_transformers_order([items[i] for i in texts])
                for idx, feats in tokenizer.batches(encodings, batch_size, order):
                    out[[texts[j] for j in idx]] = self._text_rows(feats)
                    bar.update(len(idx))
            processor = self._processor()
            for start in range(0, len(images), batch_size):
                chunk = images[start : start + batch_size]
                out[chunk] = self._image_rows(processor([load_image(items[i], f"inputs[{i}]") for i in chunk]))
                bar.update(len(chunk))
        finally:
            bar.close()
        return normalize(out) if self.spec.normalize else out

    @renamed_kwargs(sentences="inputs")
    def encode(
        self,
        inputs: Any,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: Literal["sentence_embedding"] | None = "sentence_embedding",
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
        """Embed texts and images (one item: 1-D result; a list, mixed or not: 2-D, rows in input order).

        Args:
            inputs: A text (str), an image (PIL image, ``pathlib.Path`` or a str naming an existing image file,
                numpy uint8 array ``H x W`` or ``H x W x 3``) or a list mixing them. sentence-transformers 6.2
                refuses a batch that mixes modalities; here each modality runs in its own batches and the rows come
                back in input order.
            prompt_name, prompt: Prepended to texts (not to images).
            output_value: ``"sentence_embedding"`` only (the towers give one vector per input).

        Raises:
            InputTypeError: An item that is neither text nor image (names the index).
            InputValueError: An image file that does not exist or cannot be read, an array with 4 channels (names the
                index), ``batch_size <= 0``, another ``output_value``.
        """
        from st_plugins.core.quantization import PRECISIONS

        refuse_unsupported(pool=pool)
        items, single = _split(inputs, "inputs")
        batch_size = check_positive_int(batch_size, "batch_size")
        check_choice(precision, PRECISIONS, "precision")
        if output_value != "sentence_embedding":
            raise InputValueError(f"`output_value` must be 'sentence_embedding' for an image-text model (its towers "
                                  f"give one vector per input); got {output_value!r}.")
        if device not in (None, "cpu", self._device):
            raise InputValueError(f"`device` {device!r}: move the model with .to({device!r}) instead.")
        truncate_dim = self._check_truncate_dim(truncate_dim) or self.truncate_dim
        prompt_text = self._resolve_prompt(prompt, prompt_name)
        emb = self._embed(items, prompt_text, batch_size, bool(show_progress_bar)) if items else \
            np.empty((0, self.spec.dimension), dtype=np.float32)
        if truncate_dim:
            emb = emb[:, :truncate_dim]
        if normalize_embeddings:
            emb = normalize(emb)
        if precision != "float32":
            emb = self._quantize(emb, precision, ranges, prompt_text, truncate_dim, normalize_embeddings)
        result = self._as_requested(emb, convert_to_tensor, convert_to_numpy, device)
        return result[0] if single else result

    def tokenize(self, texts: list[str], prompt: str | None = None) -> dict[str, Any]:
        import torch

        tokenizer = self._text_tokenizer()
        full = [prompt + t for t in texts] if prompt else list(texts)
        return {k: torch.from_numpy(v) for k, v in tokenizer.batch(tokenizer.encode(full)).items()}

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        raise BackendError("forward() is not available for image-text models; encode() texts and images, or train "
                           "with st_plugins.training.")

    def save(self, path: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """Copy the model folder to ``path`` (the weights as loaded; nothing is trained in place here)."""
        import shutil

        shutil.copytree(self._root, path, dirs_exist_ok=True)

    def __repr__(self) -> str:
        return (f"MultimodalSentenceTransformer({self.model_name_or_path!r}, layout={self.spec.layout!r}, "
                f"model_type={self.spec.model_type!r}, dim={self.spec.dimension}, backend={self._backend!r})")


def image_text_root(model_name_or_path: Any, kwargs: dict[str, Any]) -> bool:
    """Whether ``SentenceTransformer(model_name_or_path, **kwargs)`` names an image-text folder."""
    if model_name_or_path is None or kwargs.get("modules") is not None:
        return False
    try:
        token = kwargs.get("token") if kwargs.get("token") is not None else kwargs.get("use_auth_token")
        root = resolve_model_path(model_name_or_path, cache_folder=kwargs.get("cache_folder"),
                                  revision=kwargs.get("revision"), local_files_only=bool(kwargs.get("local_files_only")),
                                  token=token, kind="bi")
    except Exception:  # resolution errors are raised again, with their message, by __init__
        return False
    return read_image_text_spec(root) is not None  # a folder this runtime cannot serve raises ModelFormatError

