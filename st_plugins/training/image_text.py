"""An image-text model in torch, for training: a transformers model with ``get_text_features`` and
``get_image_features`` (CLIP, SigLIP, ``VisionTextDualEncoderModel``) plus its processor.

It speaks the trainer's protocol, so the bi-encoder losses train it unchanged:
``tokenize(column)`` turns one column (all texts, or all images) into features and
``model(features)["sentence_embedding"]`` embeds them; a loss on an ``(image, caption)`` column
pair (e.g. :class:`~st_plugins.training.MultipleNegativesRankingLoss`) then trains both towers.
Images are PIL images or numpy ``HWC`` uint8 arrays (RGB; greyscale ``HW`` arrays become RGB).

:meth:`ImageTextModel.save` writes the layout sentence-transformers 6.2 writes for such a model:
the transformers model and its processor at the folder root and one ``Transformer`` module whose
``modality_config`` maps text to ``get_text_features`` and image to ``get_image_features``.
``sentence_transformers.SentenceTransformer(folder)`` loads it with no custom code. SigLIP texts are padded to
the maximum length (as SigLIP was trained, and as :mod:`st_plugins.core.multimodal` serves them); its saved
folder says so in ``processing_kwargs``, so sentence-transformers pads them the same way.

Example:
    >>> from st_plugins.training.image_text import to_rgb_image
    >>> import numpy as np
    >>> to_rgb_image(np.zeros((8, 8), dtype=np.uint8)).size
    (8, 8)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["ImageTextModel", "to_rgb_image", "MODALITY_CONFIG"]

#: What sentence-transformers 6.2 infers for a model with get_text_features / get_image_features.
MODALITY_CONFIG = {"text": {"method": "get_text_features", "method_output_name": "pooler_output"},
                   "image": {"method": "get_image_features", "method_output_name": "pooler_output"}}
_TRANSFORMER_TYPE = "sentence_transformers.base.modules.transformer.Transformer"


def to_rgb_image(image: Any, index: int = 0):
    """``image`` as an RGB PIL image: a PIL image, or a numpy ``HWC`` (3 channels) or ``HW`` uint8 array.

    Raises:
        InputTypeError: Not an image, or an array that is not uint8.
        InputValueError: An array of another shape (e.g. 4 channels).
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise InputTypeError(f"image {index} must be a uint8 array (0..255); got dtype {image.dtype}.")
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3):
            return Image.fromarray(image).convert("RGB")
        raise InputValueError(f"image {index} must be an HxW or HxWx3 array; got shape {image.shape}.")
    raise InputTypeError(f"image {index} must be a PIL image or a numpy uint8 array; got {type(image).__name__}.")


def _model_folder(folder: Path) -> Path:
    """The transformers model inside ``folder``: a sentence-transformers folder's first module, else ``folder``."""
    modules = folder / "modules.json"
    if modules.is_file():
        first = json.loads(modules.read_text(encoding="utf-8"))[0]
        return folder / first.get("path", "")
    return folder


class ImageTextModel(nn.Module):
    """A transformers image-text model with its tokenizer and image processor, trainable with our losses.

    Args:
        model: A transformers model with ``get_text_features`` and ``get_image_features``.
        processor: Its processor (``tokenizer`` and ``image_processor`` attributes).
        freeze_text: Keep the text tower's weights fixed (its projection still trains); it then also
            stays in eval mode (no dropout) while training, and while training its output for each
            text is computed once and reused (a frozen tower gives the same vector every time; this
            makes a step with ten captions through MiniLM about 4x faster). Needs a model whose text
            features are ``text_projection(text_model(...).pooler_output)`` (CLIP,
            ``VisionTextDualEncoderModel``); other models run the tower every time.
    """

    def __init__(self, model: nn.Module, processor: Any, freeze_text: bool = False) -> None:
        super().__init__()
        for method in ("get_text_features", "get_image_features"):
            if not hasattr(model, method):
                raise InputTypeError(f"`model` must have {method} (an image-text model); got {type(model).__name__}.")
        self.model, self.processor = model, processor
        self.padding: bool | str = "max_length" if getattr(model.config, "model_type", None) == "siglip" else True
        self.frozen: tuple[nn.Module, ...] = ()
        self._text_cache: dict[tuple[int, ...], Tensor] | None = None
        if freeze_text:
            tower = model.text_model
            tower.requires_grad_(False)
            self.frozen = (tower,)
            if isinstance(getattr(model, "text_projection", None), nn.Module):
                self._text_cache = {}

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, freeze_text: bool = False, device: str = "cpu") -> ImageTextModel:
        """Load a plain transformers folder or a sentence-transformers image-text folder (safetensors only)."""
        from transformers import AutoModel, AutoProcessor

        path = _model_folder(Path(folder))
        model = AutoModel.from_pretrained(str(path), use_safetensors=True)
        return cls(model, AutoProcessor.from_pretrained(str(path)), freeze_text).to(device)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def train(self, mode: bool = True) -> ImageTextModel:
        super().train(mode)
        for tower in self.frozen:
            tower.eval()
        return self

    # ---------------------------------------------------------------- the trainer's protocol
    def tokenize(self, column: Sequence[Any]) -> dict[str, Tensor]:
        """Features of one column: ``input_ids``/``attention_mask``/... for texts, ``pixel_values`` for images.

        Raises:
            InputValueError: The column mixes texts and images, or is empty.
        """
        column = list(column)
        if not column:
            raise InputValueError("`column` must hold at least one text or image; got an empty list.")
        texts = [isinstance(x, str) for x in column]
        if all(texts):
            return dict(self.processor.tokenizer(column, padding=self.padding, truncation=True, return_tensors="pt"))
        if any(texts):
            first = texts.index(not texts[0])
            raise InputValueError(f"a column must hold only texts or only images; item 0 is "
                                  f"{'a text' if texts[0] else 'an image'} but item {first} is not.")
        images = [to_rgb_image(x, i) for i, x in enumerate(column)]
        return dict(self.processor.image_processor(images, return_tensors="pt"))

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{"sentence_embedding": ...}``: image features when ``pixel_values`` is given, else text features."""
        if "pixel_values" in features:
            out = self.model.get_image_features(pixel_values=features["pixel_values"])
        elif self.training and self._text_cache is not None and "attention_mask" in features:
            out = self.model.text_projection(self._frozen_text(features))
        else:
            out = self.model.get_text_features(**features)
        return {**features, "sentence_embedding": out if isinstance(out, Tensor) else out.pooler_output}

    def _frozen_text(self, features: dict[str, Tensor]) -> Tensor:
        """The frozen text tower's pooled output per row, each distinct text (its unpadded ids) computed once."""
        keys = [tuple(ids[mask.bool()].tolist()) for ids, mask in zip(features["input_ids"], features["attention_mask"])]
        missing = [i for i, key in enumerate(keys) if key not in self._text_cache]
        if missing:
            with torch.no_grad():
                pooled = self.model.text_model(**{k: v[missing] for k, v in features.items()}).pooler_output
            self._text_cache.update((keys[i], row) for i, row in zip(missing, pooled))
        return torch.stack([self._text_cache[key] for key in keys])

    def embed(self, column: Sequence[Any]) -> Tensor:
        """Embeddings of one column (texts or images), differentiable."""
        features = {k: v.to(self.device) for k, v in self.tokenize(column).items()}
        return self(features)["sentence_embedding"]

    @torch.no_grad()
    def encode(self, inputs: Sequence[Any], batch_size: int = 64, normalize_embeddings: bool = False) -> np.ndarray:
        """float32 vectors of texts and/or images in input order (each modality batched apart), in eval mode."""
        inputs = list(inputs)
        was_training = self.training
        self.eval()
        out = np.zeros((len(inputs), 0), dtype=np.float32)
        try:
            for is_text in (True, False):
                idx = [i for i, x in enumerate(inputs) if isinstance(x, str) == is_text]
                for start in range(0, len(idx), batch_size):
                    rows = idx[start: start + batch_size]
                    vectors = self.embed([inputs[i] for i in rows]).float().cpu().numpy()
                    if out.shape[1] == 0:
                        out = np.zeros((len(inputs), vectors.shape[1]), dtype=np.float32)
                    out[rows] = vectors
        finally:
            self.train(was_training)
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    # ---------------------------------------------------------------- saving
    def save(self, path: str | os.PathLike, model_card: str | None = None) -> None:
        """Write ``path`` in sentence-transformers 6.2's layout (see the module docstring); ``model_card`` -> README.md."""
        from st_plugins.core.saving import version_info, write_json

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder), safe_serialization=True)
        self.processor.save_pretrained(str(folder))
        write_json(folder / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": _TRANSFORMER_TYPE}])
        config: dict[str, Any] = {"transformer_task": "feature-extraction", "modality_config": MODALITY_CONFIG,
                                  "module_output_name": "sentence_embedding"}
        if self.padding == "max_length":
            config["processing_kwargs"] = {"text": {"padding": "max_length"}}
        write_json(folder / "sentence_bert_config.json", config)
        write_json(folder / "config_sentence_transformers.json", {
            "__version__": version_info(), "model_type": "SentenceTransformer", "prompts": {},
            "default_prompt_name": None, "similarity_fn_name": "cosine"})
        if model_card is not None:
            (folder / "README.md").write_text(model_card, encoding="utf-8")
