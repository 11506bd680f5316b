"""Image inputs: what counts as an image, and loading one as an RGB PIL image (Pillow, no torch).

An image is a ``PIL.Image.Image``, a ``pathlib.Path`` (or any ``os.PathLike``), a ``str`` that names an
existing file with an image extension (sentence-transformers' rule: other strings are text), or a numpy
array ``H x W`` (grey) or ``H x W x 3`` (RGB), ``uint8``. A PIL image with transparency is composited onto
white, as transformers' image processors do (``convert_to_rgb``); a file is read as sentence-transformers reads
a path (``transformers.image_utils.load_image``: EXIF orientation applied, then ``convert("RGB")``, which drops
the alpha channel rather than compositing it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.errors import InputTypeError, InputValueError, require

__all__ = ["IMAGE_EXTENSIONS", "is_image", "is_image_path", "load_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tiff", ".tif", ".webp")


def is_image_path(value: str) -> bool:
    """A str that sentence-transformers reads as an image: an image extension and an existing file (or a URL)."""
    lower = value.lower()
    if not lower.endswith(IMAGE_EXTENSIONS):
        return False
    return lower.startswith(("http://", "https://")) or os.path.isfile(value)


def is_image(value: Any) -> bool:
    """True for the image forms :func:`load_image` takes (a str only when :func:`is_image_path`).

    Example:
        >>> import numpy as np
        >>> is_image(np.zeros((4, 4, 3), np.uint8)), is_image("a photo of a cat"), is_image(Path("cat.png"))
        (True, False, True)
    """
    if isinstance(value, str):
        return is_image_path(value)
    if isinstance(value, (os.PathLike, np.ndarray)):
        return True
    pil = _pil_image_class()
    return pil is not None and isinstance(value, pil)


def _pil_image_class() -> Any:
    import sys

    module = sys.modules.get("PIL.Image")
    return getattr(module, "Image", None) if module is not None else None


def _rgb(image: Any) -> Any:
    """RGB, with transparency composited onto white (transformers' ``convert_to_rgb``)."""
    pil = require("PIL.Image", "images")
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        image = image.convert("RGBA")
        return pil.alpha_composite(pil.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    return image.convert("RGB")


def load_image(value: Any, where: str = "image") -> Any:
    """``value`` as an RGB ``PIL.Image.Image``.

    Args:
        where: How the error names the input (e.g. ``"inputs[3]"``).

    Raises:
        InputValueError: A path that does not exist or is not a readable image, an URL (st_plugins does not
            download), an array of the wrong shape (4 channels, 0 pixels, more than 3 dimensions).
        InputTypeError: An array that is not ``uint8``, or a value that is no image at all.

    Example:
        >>> import numpy as np
        >>> load_image(np.full((2, 3), 200, np.uint8)).size, load_image(np.zeros((2, 3, 3), np.uint8)).mode
        ((3, 2), 'RGB')
    """
    pil = require("PIL.Image", "images")
    if isinstance(value, pil.Image):
        return _rgb(value)
    if isinstance(value, np.ndarray):
        return _from_array(value, where, pil)
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        raise InputValueError(f"`{where}` is an URL ({value[:80]!r}); st_plugins does not download images: "
                              "download it and pass the file path or a PIL image.")
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise InputValueError(f"`{where}`: the image file {str(path)!r} does not exist.")
        try:
            with pil.open(path) as image:
                image.load()
                return require("PIL.ImageOps", "images").exif_transpose(image).convert("RGB")
        except (OSError, ValueError, pil.DecompressionBombError) as exc:
            raise InputValueError(f"`{where}`: {str(path)!r} is not a readable image ({type(exc).__name__}: "
                                  f"{exc}).") from exc
    raise InputTypeError(f"`{where}` must be a PIL image, an image file path or a numpy uint8 array (H x W or "
                         f"H x W x 3); got {type(value).__name__}.")


def _from_array(array: np.ndarray, where: str, pil: Any) -> Any:
    if array.dtype != np.uint8:
        raise InputTypeError(f"`{where}` must be a uint8 array (0..255); got dtype {array.dtype}. Convert it, e.g. "
                             "(array * 255).round().astype('uint8') for values in [0, 1].")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2 and array.size:
        return pil.fromarray(np.ascontiguousarray(array)).convert("RGB")
    if array.ndim == 3 and array.shape[-1] == 3 and array.size:
        return pil.fromarray(np.ascontiguousarray(array))
    raise InputValueError(f"`{where}` must be an image array H x W (grey) or H x W x 3 (RGB, channels last); got "
                          f"shape {array.shape}" + (" (4 channels: drop the alpha channel, e.g. array[..., :3])"
                                                    if array.ndim == 3 and array.shape[-1] == 4 else "") + ".")
