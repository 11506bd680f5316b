"""``ImageEmbeddingTransformer``: images (or their paths) in, image embeddings out, as a scikit-learn transformer."""

from __future__ import annotations

import os
from typing import Any

from st_plugins.errors import InputValueError
from st_plugins.sklearn._embedding import EmbeddingTransformer
from st_plugins.sklearn._inputs import images_from_X

__all__ = ["ImageEmbeddingTransformer"]


class ImageEmbeddingTransformer(EmbeddingTransformer):
    """Embed images with an image-text bi-encoder (CLIP-style); one row of ``X`` (an image) becomes one float32 vector.

    ``X`` may be a list of PIL images, image arrays (``(height, width, 3)`` uint8 or ``(height, width)`` grey) or
    file paths; a stack ``(n, height, width[, 3])`` such as ``load_digits().images``; or a 1-D array, Series or
    one-column 2-D array/DataFrame of paths (``df[["path"]]`` in a ``ColumnTransformer``). The core decodes and
    preprocesses every image, as ``SentenceTransformer.encode`` does. Everything else is
    :class:`EmbeddingTransformer`'s: parameters take effect at :meth:`fit`, the model comes from the process-wide
    cache, and a pickle holds no weights.

    Args:
        model: An image-text model: a registered name, a folder or a hub id in the cache (sentence-transformers'
            ``"clip-ViT-B-32"`` by default, found only when it is in the Hugging Face cache).
        batch_size: Images per forward pass.
        normalize_embeddings: L2-normalize the vectors.
        truncate_dim: Keep only the first ``truncate_dim`` dimensions.
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available, else cpu).
        show_progress_bar: Show a progress bar while encoding.

    Raises:
        InputValueError: (in :meth:`fit`) the model has no image tower, or a parameter is out of range.

    Example:
        >>> import numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.pipeline import make_pipeline
        >>> from tests.factories import tiny_clip  # a tiny random CLIP folder; any image-text model will do
        >>> red, blue = np.zeros((4, 32, 32, 3), dtype=np.uint8), np.zeros((4, 32, 32, 3), dtype=np.uint8)
        >>> red[..., 0], blue[..., 2] = 255, 255
        >>> pipe = make_pipeline(ImageEmbeddingTransformer(tiny_clip(), device="cpu"), LogisticRegression())
        >>> pipe.fit(np.concatenate([red, blue]), [0] * 4 + [1] * 4).predict(blue[:1])
        array([1])
    """

    def __init__(self, model: str | os.PathLike = "clip-ViT-B-32", batch_size: int = 32,
                 normalize_embeddings: bool = False, truncate_dim: int | None = None, device: str | None = None,
                 show_progress_bar: bool = False) -> None:
        self.model = model
        self.batch_size = batch_size
        self.normalize_embeddings = normalize_embeddings
        self.truncate_dim = truncate_dim
        self.device = device
        self.show_progress_bar = show_progress_bar

    _item = "image"
    _rows = staticmethod(images_from_X)

    def _check_encoder(self, encoder: Any) -> None:
        modalities = getattr(encoder, "modalities", ("text",))
        if "image" not in modalities:
            raise InputValueError(f"`model` must be an image-text model (e.g. a CLIP folder); {self.model!r} has no "
                                  f"image tower (it embeds {', '.join(modalities)} only). Use EmbeddingTransformer "
                                  "for texts.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # paths: a list, 1-D array, Series or one-column 2-D
        return tags
