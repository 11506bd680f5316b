"""``LangChainCrossEncoder``: LangChain's ``BaseCrossEncoder`` on an st_plugins ``CrossEncoder``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.cross_encoders import BaseCrossEncoder
from pydantic import BaseModel, ConfigDict, Field, InstanceOf, PrivateAttr

from st_plugins.core.cache import get_model
from st_plugins.core.cross_encoder import CrossEncoder
from st_plugins.core.validation import as_pair_list
from st_plugins.errors import InputValueError

__all__ = ["LangChainCrossEncoder"]


class LangChainCrossEncoder(BaseModel, BaseCrossEncoder):
    """``langchain_core.cross_encoders.BaseCrossEncoder`` on an st_plugins ``CrossEncoder``.

    A real subclass rather than ``BaseCrossEncoder.register(CrossEncoder)``: the core stays free of
    LangChain, no third-party ABC is altered at import time, fields are typed and validated, and
    :meth:`score` batches by :attr:`batch_size` and returns the plain ``list[float]`` LangChain expects.

    Args:
        model: A name or folder (loaded through the shared cache; ``"st-plugins/stsb-reranker"`` is
            the reranker ``st-plugins train-reranker`` makes) or a ``CrossEncoder``.
        batch_size: Pairs per forward pass.
        device: Device for a model loaded by name (leave ``None`` when passing a ``CrossEncoder``).

    Raises:
        pydantic.ValidationError: An unknown field, a wrong type, ``batch_size <= 0``, or ``device``
            given together with a ``CrossEncoder`` instance (a ``ValueError``).
        ModelNotFoundError: ``model`` names no folder, registered name or cached hub model.
    """

    model: str | Path | InstanceOf[CrossEncoder]
    batch_size: int = Field(default=32, gt=0)
    device: str | None = None

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    _model: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        if isinstance(self.model, CrossEncoder):
            if self.device is not None:
                raise InputValueError(
                    f"`device` must be None when `model` is a CrossEncoder instance; got {self.device!r}. "
                    "Move the model itself, or pass its name or folder."
                )
            self._model = self.model
        else:
            self._model = get_model("cross", self.model, device=self.device)

    @property
    def client(self) -> Any:
        """The ``st_plugins.CrossEncoder`` doing the work."""
        return self._model

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        """Relevance score of each ``(query, document)`` pair (higher is more relevant), in input order.

        ``CrossEncoder.predict``'s score for one-label models, label 1's score for multi-label ones
        (as LangChain's ``HuggingFaceCrossEncoder``), batched by :attr:`batch_size`.

        Returns:
            One ``float`` per pair; ``[]`` for no pairs.

        Raises:
            InputTypeError: An item is not a pair of two str (the message names the index).
        """
        pairs, _ = as_pair_list(text_pairs, "text_pairs")
        if not pairs:
            return []
        scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        return (scores[:, 1] if scores.ndim > 1 else scores).tolist()
