"""``CrossEncoderReranker``: rerank retrieved documents; a LangChain document compressor and Runnable."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, InstanceOf, PrivateAttr

from st_plugins.core.cross_encoder import CrossEncoder
from st_plugins.errors import InputTypeError, InputValueError
from st_plugins.langchain._cross_encoder import LangChainCrossEncoder

__all__ = ["CrossEncoderReranker"]


class CrossEncoderReranker(BaseDocumentCompressor, RunnableSerializable[dict, list[Document]]):
    """Rerank retrieved documents with a cross-encoder; a document compressor and a Runnable.

    As a compressor: ``compress_documents(documents, query)`` (e.g. in ``ContextualCompressionRetriever``).
    As a Runnable: input ``{"query": str, "documents": list[Document]}`` (LangChain's reranking
    convention), e.g. ``{"query": RunnablePassthrough(), "documents": retriever} | reranker``.

    Args:
        model: A name or folder, an st_plugins ``CrossEncoder``, or any ``BaseCrossEncoder``.
        top_n: Keep at most this many documents (``None``: all).
        score_threshold: Drop documents scoring below this value.
        batch_size: Pairs per forward pass.
        device: Device for a model loaded by name.

    Raises:
        pydantic.ValidationError: An unknown field, a wrong type, or ``top_n``/``batch_size <= 0``.
        ModelNotFoundError: ``model`` names no folder, registered name or cached hub model.

    Example:
        >>> class WordOverlap(BaseCrossEncoder):  # any BaseCrossEncoder works; usually a model name
        ...     def score(self, text_pairs):
        ...         return [float(len(set(q.split()) & set(d.split()))) for q, d in text_pairs]
        >>> reranker = CrossEncoderReranker(model=WordOverlap(), top_n=2)
        >>> docs = [Document(page_content=t) for t in ["a dog", "the cat sat", "a cat"]]
        >>> [(d.page_content, d.metadata["relevance_score"]) for d in reranker.compress_documents(docs, "the cat")]
        [('the cat sat', 2.0), ('a cat', 1.0)]
    """

    model: str | Path | InstanceOf[CrossEncoder] | InstanceOf[BaseCrossEncoder]
    top_n: int | None = Field(default=3, gt=0)
    score_threshold: float | None = Field(default=None, allow_inf_nan=False)  # NaN would drop every document
    batch_size: int = Field(default=32, gt=0)
    device: str | None = None

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    _scorer: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        if isinstance(self.model, BaseCrossEncoder):
            given = sorted({"batch_size", "device"} & self.model_fields_set)
            if given:
                raise InputValueError(
                    f"{', '.join(f'`{g}`' for g in given)} only apply when `model` is a name, a folder or a "
                    f"CrossEncoder; got them with a {type(self.model).__name__}. Set them on that scorer instead."
                )
            self._scorer = self.model
        else:
            self._scorer = LangChainCrossEncoder(model=self.model, batch_size=self.batch_size, device=self.device)

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[Document]:
        """The best documents for ``query``, best first (ties keep input order).

        Returns:
            Copies carrying ``metadata["relevance_score"]``; the inputs are left untouched.

        Raises:
            InputTypeError: ``query`` is not a str or a document is not a ``Document``.
        """
        if not isinstance(query, str):
            raise InputTypeError(f"`query` must be a str; got {type(query).__name__}.")
        if isinstance(documents, (str, dict, Document)) or not hasattr(documents, "__iter__"):
            raise InputTypeError(f"`documents` must be a list of langchain Documents; got {type(documents).__name__}.")
        documents = list(documents)
        for i, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise InputTypeError(f"`documents[{i}]` must be a langchain Document; got {type(doc).__name__}.")
        if not documents:
            return []
        scores = self._scorer.score([(query, doc.page_content) for doc in documents])
        order = sorted(range(len(documents)), key=lambda i: -scores[i])  # stable: ties keep input order
        if self.score_threshold is not None:
            order = [i for i in order if scores[i] >= self.score_threshold]
        return [documents[i].model_copy(update={"metadata": {**documents[i].metadata, "relevance_score": scores[i]}})
                for i in order[: self.top_n]]

    async def acompress_documents(self, documents: Sequence[Document], query: str,
                                  callbacks: Callbacks | None = None) -> Sequence[Document]:
        """:meth:`compress_documents` in a worker thread (the event loop keeps running)."""
        return await run_in_executor(None, self.compress_documents, documents, query, callbacks)

    @staticmethod
    def _unpack(value: Any) -> tuple[Sequence[Document], str]:
        hint = 'Compose it as {"query": RunnablePassthrough(), "documents": retriever} | reranker.'
        if not isinstance(value, dict):
            raise InputTypeError(f"The reranker's input must be a dict {{'query', 'documents'}}; "
                                 f"got {type(value).__name__}. {hint}")
        if not {"query", "documents"} <= set(value):
            raise InputValueError(f"The reranker's input must have keys 'query' and 'documents'; got {sorted(value)}. {hint}")
        return value["documents"], value["query"]

    def _rerank(self, value: dict) -> list[Document]:
        return list(self.compress_documents(*self._unpack(value)))

    def invoke(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> list[Document]:
        """Rerank ``input["documents"]`` for ``input["query"]``."""
        return self._call_with_config(self._rerank, input, config)

    async def ainvoke(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> list[Document]:
        """:meth:`invoke` without blocking the event loop."""
        async def rerank(value: dict) -> list[Document]:
            return list(await self.acompress_documents(*self._unpack(value)))

        return await self._acall_with_config(rerank, input, config)
