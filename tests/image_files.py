"""A few generated image files for the adapter tests (Chroma, scikit-learn, LangChain, the CLI).

Coloured shapes on plain backgrounds, written once per folder with fixed pixels (no randomness), in the forms
the adapters meet: RGB PNG, RGBA PNG (transparency), grey PNG, JPEG. The tiny random CLIP of
:func:`tests.factories.tiny_clip` gives them clearly different vectors (colour dominates its random features).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["COLOURS", "colour_image", "write_images"]

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220), "yellow": (240, 220, 40),
           "purple": (140, 40, 160), "grey": (128, 128, 128)}


def colour_image(colour: tuple[int, int, int], size: tuple[int, int] = (40, 48), shape: int = 0) -> np.ndarray:
    """An ``(height, width, 3)`` uint8 image: ``colour`` background with a white square or bar (``shape`` 0-2)."""
    image = np.empty((*size, 3), dtype=np.uint8)
    image[:] = colour
    h, w = size
    if shape == 0:
        image[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
    elif shape == 1:
        image[:, w // 2 - 3: w // 2 + 3] = 255
    else:
        image[h // 2 - 3: h // 2 + 3, :] = 255
    return image


def write_images(folder: Path) -> list[Path]:
    """Write ``red.png`` (RGB), ``green.jpg``, ``blue.jpeg``, ``yellow.png`` (RGBA, half transparent), ``grey.png``
    (mode L) and ``purple.png`` into ``folder``; return their paths, sorted by name."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(colour_image(COLOURS["red"])).save(folder / "red.png")
    Image.fromarray(colour_image(COLOURS["green"], shape=1)).save(folder / "green.jpg", quality=95)
    Image.fromarray(colour_image(COLOURS["blue"], (50, 36), shape=2)).save(folder / "blue.jpeg", quality=95)
    rgba = np.dstack([colour_image(COLOURS["yellow"]), np.full((40, 48), 128, dtype=np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "yellow.png")
    Image.fromarray(colour_image(COLOURS["grey"])[..., 0]).save(folder / "grey.png")
    Image.fromarray(colour_image(COLOURS["purple"], (64, 30))).save(folder / "purple.png")
    return sorted(folder.iterdir())
