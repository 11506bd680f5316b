"""``LangChainEmbeddings``: LangChain's ``Embeddings`` on a shared st_plugins bi-encoder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from st_plugins.core.cache import get_model
from st_plugins.core.images import load_image
from st_plugins.core.validation import as_text_list, check_text
from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["LangChainEmbeddings"]


class LangChainEmbeddings(BaseModel, Embeddings):
    """Embed documents and queries with a sentence-transformers model, for LangChain.

    Documents go through the model's document prompt and queries through its query prompt
    (``SentenceTransformer.encode_document`` / ``encode_query``); texts are passed unchanged.
    The model comes from the process-wide cache, so many instances share one copy.
    ``aembed_*`` run in a worker thread and never block the event loop. With an image-text model (CLIP-style),
    :meth:`embed_image` embeds image files into the same space, as LangChain's ``OpenCLIPEmbeddings`` does (and
    ``langchain_chroma.Chroma.add_images`` / ``similarity_search_by_image`` call it).

    Args:
        model: A registered name (default ``"all-MiniLM-L6-v2"``), a folder or a hub id in the cache.
        batch_size: Texts per forward pass.
        normalize_embeddings: L2-normalize the vectors.
        query_prompt_name: Prompt for queries (default: the model's ``"query"`` prompt, if any).
        document_prompt_name: Prompt for documents (default: ``"document"``/``"passage"``/``"corpus"``).
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available, else cpu).
        show_progress: Show a progress bar while embedding.

    Raises:
        pydantic.ValidationError: An unknown field or a value of the wrong type (a ``ValueError``).
        InputValueError: A prompt name the model does not define.
        ModelNotFoundError: ``model`` cannot be found.

    Example:
        >>> emb = LangChainEmbeddings(model="all-MiniLM-L6-v2", device="cpu")
        >>> len(emb.embed_query("What is the weather like?"))
        384
        >>> [len(v) for v in emb.embed_documents(["It is sunny.", "It rains."])]
        [384, 384]
    """

    model: str | Path = "all-MiniLM-L6-v2"
    batch_size: int = Field(default=32, gt=0)
    normalize_embeddings: bool = False
    query_prompt_name: str | None = None
    document_prompt_name: str | None = None
    device: str | None = None
    show_progress: bool = False

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    _model: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        self._model = get_model("bi", self.model, device=self.device)
        for field in ("query_prompt_name", "document_prompt_name"):
            name = getattr(self, field)
            if name is not None and name not in self._model.prompts:
                raise InputValueError(
                    f"`{field}` must be one of this model's prompts {sorted(self._model.prompts)} or None; "
                    f"got {name!r}. Pass one of them, or add it to the model's prompts."
                )

    @property
    def client(self) -> Any:
        """The shared ``st_plugins.SentenceTransformer`` doing the work."""
        return self._model

    def _options(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "normalize_embeddings": self.normalize_embeddings,
                "show_progress_bar": self.show_progress}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts with the document prompt.

        Args:
            texts: The documents (a list of str; empty strings are fine).

        Returns:
            One list of floats per text, in input order.

        Raises:
            InputTypeError: ``texts`` is a str or holds a non-str item (the message names the index).
        """
        if isinstance(texts, str):
            raise InputTypeError("`texts` must be a list of str; got str. Wrap it in a list, or call embed_query.")
        texts, _ = as_text_list(texts, "texts")
        if not texts:
            return []
        vectors = self._model.encode_document(texts, prompt_name=self.document_prompt_name, **self._options())
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the query prompt.

        Args:
            text: The query.

        Returns:
            Its vector as a list of floats.

        Raises:
            InputTypeError: ``text`` is not a str.
        """
        if not isinstance(text, str):
            raise InputTypeError(f"`text` must be a str; got {type(text).__name__}. Use embed_documents for a list.")
        check_text(text, "text")
        vector = self._model.encode_query([text], prompt_name=self.query_prompt_name, **self._options())
        return vector[0].tolist()

    def embed_image(self, uris: list[str]) -> list[list[float]]:
        """Embed image files (no prompt), for an image-text model.

        Args:
            uris: Paths of image files (str or ``os.PathLike``), read and preprocessed by the core.

        Returns:
            One list of floats per image, in input order.

        Raises:
            InputTypeError: ``uris`` is a single str, or an item is not a path (the message names the index).
            InputValueError: The model has no image tower, or a file is missing or not an image (names the index).
        """
        if isinstance(uris, (str, os.PathLike)) or not isinstance(uris, (list, tuple)):
            raise InputTypeError(f"`uris` must be a list of image paths; got {type(uris).__name__}. Wrap one in a list.")
        modalities = getattr(self._model, "modalities", ("text",))
        if "image" not in modalities:
            raise InputValueError(f"embed_image needs an image-text model (e.g. a CLIP folder); `model` {str(self.model)!r} "
                                  f"has no image tower (it embeds {', '.join(modalities)} only).")
        for i, uri in enumerate(uris):
            if not isinstance(uri, (str, os.PathLike)):
                raise InputTypeError(f"`uris[{i}]` must be the path of an image file (a str); got {type(uri).__name__}.")
        if not uris:
            return []
        images = [load_image(uri, f"uris[{i}]") for i, uri in enumerate(uris)]
        return self._model.encode(images, **self._options()).tolist()

    async def aembed_image(self, uris: list[str]) -> list[list[float]]:
        """:meth:`embed_image` in a worker thread (the event loop keeps running)."""
        return await run_in_executor(None, self.embed_image, uris)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """:meth:`embed_documents` in a worker thread (the event loop keeps running)."""
        return await run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """:meth:`embed_query` in a worker thread (the event loop keeps running)."""
        return await run_in_executor(None, self.embed_query, text)
