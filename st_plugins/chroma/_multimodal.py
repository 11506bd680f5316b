"""``ChromaMultimodalEmbeddingFunction``: Chroma documents *and* images through an image-text bi-encoder, and
``ImageLoader``, Chroma's ``uris`` loaded by the core.

Registered with Chroma under the name ``"st_plugins_multimodal"`` (through ``import st_plugins.chroma``), so a
collection of images reopens in any process without passing the function. Chroma stores no data loader: pass
``data_loader=ImageLoader()`` (or Chroma's own) to ``get_collection`` to add or query by ``uris``; ``query_texts``
and ``query_images`` need none. :func:`st_plugins.chroma.open_collection` attaches one itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from chromadb.api.types import URI, DataLoader, Embeddable, EmbeddingFunction, Embeddings, Image
from chromadb.utils.embedding_functions import register_embedding_function

from st_plugins.chroma._embedding_function import ChromaEmbeddingFunction
from st_plugins.core.images import is_image, load_image
from st_plugins.core.validation import check_text
from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["ChromaMultimodalEmbeddingFunction", "ImageLoader"]


@register_embedding_function
class ChromaMultimodalEmbeddingFunction(ChromaEmbeddingFunction, EmbeddingFunction[Embeddable]):
    """Embed Chroma documents (str) and images (numpy arrays, as Chroma's ``ImageLoader`` gives) into one space.

    The settings are :class:`ChromaEmbeddingFunction`'s (``prompts`` apply to texts only); the model must have an
    image tower (a CLIP-style folder; by default sentence-transformers' ``"clip-ViT-B-32"``, found only when it is in
    the Hugging Face cache). Texts and images may be mixed in one call; vectors come back in input order.

    Raises:
        InputTypeError: An item that is neither a str nor an image array (the message names the index).
        InputValueError: An empty input, a bad image (e.g. 4 channels), or images for a model without an image tower.

    Example:
        >>> from tests.factories import tiny_clip  # a tiny random CLIP folder; any image-text model will do
        >>> ef = ChromaMultimodalEmbeddingFunction(tiny_clip(), device="cpu")
        >>> text, image = ef(["a red square"]), ef([np.full((40, 40, 3), (255, 0, 0), dtype=np.uint8)])
        >>> text[0].shape == image[0].shape, str(image[0].dtype), ChromaMultimodalEmbeddingFunction.name()
        (True, 'float32', 'st_plugins_multimodal')
    """

    def __init__(self, model_name: str | os.PathLike = "clip-ViT-B-32", *args: Any, **kwargs: Any) -> None:
        super().__init__(model_name, *args, **kwargs)  # sentence-transformers' CLIP name by default, not a text model

    def __call__(self, input: Embeddable) -> Embeddings:
        """Embed documents (with the document prompt, if any) and images: one float32 1-D array per item."""
        return self._encode(self.model.encode_document, input, self.prompts.get("document"))

    def embed_query(self, input: Embeddable) -> Embeddings:
        """Embed queries: texts with the query prompt, if any (``query_texts``), or images (``query_images``)."""
        return self._encode(self.model.encode_query, input, self.prompts.get("query"))

    def _encode(self, encode: Any, input: Any, prompt: str | None) -> Embeddings:
        items = _items(input)
        modalities = getattr(self.model, "modalities", ("text",))
        if "image" not in modalities and not all(isinstance(item, str) for item in items):
            raise InputValueError(f"The model {self.model_name!r} has no image tower (it embeds "
                                  f"{', '.join(modalities)} only), so it cannot embed images; make the collection "
                                  "with an image-text model (e.g. a CLIP folder).")
        # The core embeds each modality in its own batches, prompts texts only, and keeps the input order.
        return list(encode(items, prompt=prompt, batch_size=self.batch_size,
                           normalize_embeddings=self.normalize_embeddings))

    @staticmethod
    def name() -> str:
        return "st_plugins_multimodal"  # the key Chroma stores and looks up in its registry

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaMultimodalEmbeddingFunction:
        ChromaEmbeddingFunction.validate_config(config)
        return ChromaMultimodalEmbeddingFunction(**config)


def _items(input: Any) -> list[Any]:
    """``input`` as a list of documents (str) and images (Chroma passes numpy arrays)."""
    stack = isinstance(input, np.ndarray) and input.ndim == 4  # (n, height, width, channels)
    if not stack and (isinstance(input, (str, bytes, np.ndarray)) or not isinstance(input, Sequence)):
        raise InputTypeError(f"`input` must be a list of documents (str) or of images (numpy arrays); got "
                             f"{type(input).__name__}. Wrap a single one in a list.")
    items = list(input)
    if not items:
        raise InputValueError("`input` must be a non-empty list of documents or images; got an empty list.")
    for i, item in enumerate(items):
        if isinstance(item, str):
            check_text(item, f"input[{i}]")
        elif not is_image(item):  # arrays (what Chroma passes), PIL images, paths: checked by the core
            raise InputTypeError(f"`input[{i}]` must be a str (a document) or an image (a uint8 array height x width "
                                 f"[x 3]); got {type(item).__name__}. Pass image files as `uris` instead.")
    return items


class ImageLoader(DataLoader[list[Image | None]]):
    """Chroma's data loader for ``uris``, decoding with the core (:func:`st_plugins.core.images.load_image`).

    Unlike ``chromadb.utils.data_loaders.ImageLoader`` (``np.array(PIL.Image.open(uri))``), every image comes
    back as RGB ``(height, width, 3)`` uint8, so RGBA, palette and grey files embed as the model expects, and a
    missing or unreadable file raises a typed error naming ``uris[i]``.
    """

    def __call__(self, uris: Sequence[URI | None]) -> list[Image | None]:
        return [None if uri is None else np.asarray(load_image(uri, f"uris[{i}]")) for i, uri in enumerate(uris)]
