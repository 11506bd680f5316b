"""The folder's image processor, in numpy + Pillow: resize, center crop, rescale, normalize (no torch).

Reads the settings transformers saves (``processor_config.json``'s ``image_processor``, or the older
``preprocessor_config.json``) for the processors of CLIP, SigLIP, ViT and their kin, and applies them as
transformers' PIL backend does: resize the uint8 RGB image with Pillow (``shortest_edge`` keeps the aspect
ratio, ``int(edge * long / short)``; ``height``/``width`` is exact), crop the center (``(h - crop) // 2``,
zero padding when smaller), multiply by ``rescale_factor`` in float64 then float32, subtract the mean and
divide by the std per channel; channels first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from math import ceil
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.errors import ModelFormatError, require

__all__ = ["ImageSettings", "ImageProcessor"]

_CLIP_MEAN, _CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
#: transformers' class defaults for the settings a saved config may leave out
_DEFAULTS: dict[str, dict[str, Any]] = {
    "CLIPImageProcessor": {"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224},
                           "do_center_crop": True, "resample": 3, "image_mean": _CLIP_MEAN, "image_std": _CLIP_STD},
    "SiglipImageProcessor": {"size": {"height": 224, "width": 224}, "do_center_crop": False, "resample": 3,
                             "image_mean": [0.5] * 3, "image_std": [0.5] * 3},
    "ViTImageProcessor": {"size": {"height": 224, "width": 224}, "do_center_crop": False, "resample": 2,
                          "image_mean": [0.5] * 3, "image_std": [0.5] * 3},
}
_SUPPORTED = tuple(_DEFAULTS) + tuple(f"{name}Fast" for name in _DEFAULTS) + tuple(f"{name}Pil" for name in _DEFAULTS)


@dataclass
class ImageSettings:
    """What the image processor does (transformers' names)."""

    processor_type: str = "CLIPImageProcessor"
    do_resize: bool = True
    size: dict[str, int] = field(default_factory=lambda: {"shortest_edge": 224})
    resample: int = 3
    do_center_crop: bool = True
    crop_size: dict[str, int] = field(default_factory=lambda: {"height": 224, "width": 224})
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: list[float] = field(default_factory=lambda: list(_CLIP_MEAN))
    image_std: list[float] = field(default_factory=lambda: list(_CLIP_STD))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageSettings:
        return cls(**data)

    @classmethod
    def from_folder(cls, folder: str | Path) -> ImageSettings:
        """The settings saved in ``folder`` (``processor_config.json`` or ``preprocessor_config.json``).

        Raises:
            ModelFormatError: Neither file holds an image processor, or its type is not one listed in the
                module docstring (the message names the file).
        """
        folder = Path(folder)
        data, source = None, folder / "processor_config.json"
        for name in ("processor_config.json", "preprocessor_config.json"):
            path = folder / name
            if path.is_file():
                try:
                    loaded = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, ValueError) as exc:
                    raise ModelFormatError(f"{path} is not valid JSON ({exc}); re-save the processor.") from exc
                loaded = loaded.get("image_processor", loaded) if isinstance(loaded, dict) else None
                if isinstance(loaded, dict) and "image_processor_type" in loaded:
                    data, source = loaded, path
                    break
        if data is None:
            raise ModelFormatError(f"{folder} has no image processor (processor_config.json or "
                                   "preprocessor_config.json with an image_processor_type); save the model's "
                                   "processor with save_pretrained.")
        kind = str(data["image_processor_type"])
        if kind not in _SUPPORTED:
            raise ModelFormatError(f"{source}: image processor {kind!r} is not supported; supported: "
                                   f"{sorted(_DEFAULTS)}.")
        base = kind.removesuffix("Fast").removesuffix("Pil")
        merged = {**_DEFAULTS[base], **{k: v for k, v in data.items() if v is not None}}
        names = set(cls.__dataclass_fields__) - {"processor_type"}
        settings = cls(processor_type=base, **{k: merged[k] for k in names if k in merged})
        if settings.do_resize and not (_is_size(settings.size, "shortest_edge") or _is_size(settings.size, "height", "width")):
            raise ModelFormatError(f"{source}: size {settings.size} is not supported (shortest_edge, or height "
                                   "and width).")
        return settings


def _is_size(size: Any, *keys: str) -> bool:
    return isinstance(size, dict) and all(isinstance(size.get(k), int) and size[k] > 0 for k in keys)


class ImageProcessor:
    """Turn RGB PIL images into the ``pixel_values`` batch the vision tower takes (float32, N x 3 x H x W).

    Example:
        >>> from PIL import Image
        >>> processor = ImageProcessor(ImageSettings(size={"shortest_edge": 4}, crop_size={"height": 4, "width": 4}))
        >>> processor([Image.new("RGB", (8, 6), (255, 0, 0))]).shape
        (1, 3, 4, 4)
    """

    def __init__(self, settings: ImageSettings) -> None:
        self.settings = settings
        self._mean = np.asarray(settings.image_mean, dtype=np.float64)
        self._std = np.asarray(settings.image_std, dtype=np.float64)

    def _target(self, width: int, height: int) -> tuple[int, int]:
        size = self.settings.size
        if "shortest_edge" in size:
            edge = size["shortest_edge"]
            short, long = (width, height) if width <= height else (height, width)
            new_short, new_long = edge, int(edge * long / short)
            return (new_short, new_long) if width <= height else (new_long, new_short)
        return size["width"], size["height"]

    def one(self, image: Any) -> np.ndarray:
        """One RGB PIL image as float32 ``3 x H x W``."""
        pil = require("PIL.Image", "images")
        s = self.settings
        if s.do_resize:
            target = self._target(*image.size)
            if target != image.size:
                image = image.resize(target, resample=pil.Resampling(s.resample))
        array = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
        if s.do_center_crop:
            array = _center_crop(array, s.crop_size["height"], s.crop_size["width"])
        out = array.astype(np.float64) * s.rescale_factor if s.do_rescale else array.astype(np.float64)
        out = out.astype(np.float32)
        if s.do_normalize:
            out = ((out - self._mean.astype(np.float32)[:, None, None]) / self._std.astype(np.float32)[:, None, None])
        return out.astype(np.float32)

    def __call__(self, images: list[Any]) -> np.ndarray:
        return np.stack([self.one(image) for image in images]) if images else np.empty((0, 3, 1, 1), np.float32)


def _center_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """transformers' ``center_crop`` (channels first): the middle window, zero-padded when the image is smaller."""
    _, h, w = array.shape
    top, left = (h - height) // 2, (w - width) // 2
    bottom, right = top + height, left + width
    if top >= 0 and left >= 0 and bottom <= h and right <= w:
        return array[:, top:bottom, left:right]
    new_h, new_w = max(height, h), max(width, w)
    padded = np.zeros((array.shape[0], new_h, new_w), dtype=array.dtype)
    top_pad, left_pad = ceil((new_h - h) / 2), ceil((new_w - w) / 2)
    padded[:, top_pad : top_pad + h, left_pad : left_pad + w] = array
    top, bottom, left, right = top + top_pad, bottom + top_pad, left + left_pad, right + left_pad
    return padded[:, max(0, top) : min(new_h, bottom), max(0, left) : min(new_w, right)]
