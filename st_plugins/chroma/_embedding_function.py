"""``ChromaEmbeddingFunction``: a drop-in for Chroma's sentence-transformer embedding function.

Registered with Chroma under the name ``"st_plugins"`` when this module is imported (through
``import st_plugins.chroma``). Models come from the process-wide cache
(:func:`st_plugins.core.cache.get_model`), so Chroma rebuilding the function on every call costs nothing.
"""

from __future__ import annotations

import os
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from st_plugins.core.cache import get_model
from st_plugins.core.validation import as_text_list, check_choice, check_positive_int
from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["VECTOR_SETTINGS", "ChromaEmbeddingFunction"]

#: Settings whose change alters the stored vectors or their dimension.
VECTOR_SETTINGS = ("model_name", "revision", "normalize_embeddings", "prompts", "truncate_dim", "dtype")
_SETTINGS = (*VECTOR_SETTINGS, "device", "batch_size")
_SPACES: dict[str, Space] = {"cosine": "cosine", "dot": "ip", "euclidean": "l2", "manhattan": "l2"}
_DTYPES = (None, "float32", "float16", "bfloat16")


@register_embedding_function
class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Embed Chroma documents and queries with an st_plugins ``SentenceTransformer``.

    Args:
        model_name: A registered name (default: the packaged ``"all-MiniLM-L6-v2"``), a folder or a hub id.
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available, else cpu).
        normalize_embeddings: L2-normalize the vectors.
        prompts: ``{"query": ..., "document": ...}`` texts prepended to queries and documents
            (default: the model's own ``query`` / ``document`` prompts, if any).
        truncate_dim: Keep only the first ``truncate_dim`` dimensions (Matryoshka models).
        dtype: Weights dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` (vectors stay float32).
        revision: Hub revision of ``model_name``.
        batch_size: Texts per forward pass.
        precision: Only ``"float32"``: Chroma stores float vectors, so quantized precisions are refused.

    Raises:
        InputValueError: A setting outside what is allowed (e.g. ``precision="int8"``).

    Example:
        >>> ef = ChromaEmbeddingFunction("all-MiniLM-L6-v2", device="cpu")
        >>> vectors = ef(["The weather is lovely today."])
        >>> len(vectors), vectors[0].shape, str(vectors[0].dtype), ef.default_space()
        (1, (384,), 'float32', 'cosine')
        >>> ChromaEmbeddingFunction.build_from_config(ef.get_config()).get_config() == ef.get_config()
        True
    """

    def __init__(
        self,
        model_name: str | os.PathLike = "all-MiniLM-L6-v2",
        device: str | None = None,
        normalize_embeddings: bool = False,
        prompts: dict[str, str] | None = None,
        truncate_dim: int | None = None,
        dtype: str | None = None,
        revision: str | None = None,
        batch_size: int = 32,
        precision: str = "float32",
    ) -> None:
        if precision != "float32":
            raise InputValueError(
                f"`precision` must be 'float32' for Chroma, which stores float vectors only; got {precision!r}. "
                "Quantize outside Chroma with st_plugins.util.quantize_embeddings if you need int8/binary."
            )
        if not isinstance(model_name, (str, os.PathLike)) or not isinstance(normalize_embeddings, bool):
            raise InputTypeError(f"`model_name` must be a str or path and `normalize_embeddings` a bool; "
                                 f"got {model_name!r} and {normalize_embeddings!r}.")
        name = os.fspath(model_name)
        self.model_name = os.path.abspath(name) if os.path.isdir(name) else name  # stored: absolute folders
        self.device, self.normalize_embeddings, self.revision = device, normalize_embeddings, revision
        self.prompts = _check_prompts(prompts)
        self.truncate_dim = None if truncate_dim is None else check_positive_int(truncate_dim, "truncate_dim")
        self.dtype = check_choice(dtype, _DTYPES, "dtype")
        self.batch_size = check_positive_int(batch_size, "batch_size")

    @property
    def model(self) -> Any:
        """The shared ``SentenceTransformer`` for these settings (loaded once per process)."""
        return get_model(
            "bi", self.model_name, device=self.device, revision=self.revision, truncate_dim=self.truncate_dim,
            model_kwargs={"dtype": self.dtype} if self.dtype else None,
        )

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents (with the document prompt, if any): one float32 1-D array per text."""
        return self._encode(self.model.encode_document, input, self.prompts.get("document"))

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed queries (with the query prompt, if any): one float32 1-D array per text."""
        return self._encode(self.model.encode_query, input, self.prompts.get("query"))

    def _encode(self, encode: Any, input: Any, prompt: str | None) -> Embeddings:
        texts, _ = as_text_list(input, "input")
        if not texts:
            raise InputValueError("`input` must be a non-empty list of str; got an empty list. Pass at least one text.")
        vectors = encode(texts, prompt=prompt, batch_size=self.batch_size,
                         normalize_embeddings=self.normalize_embeddings)
        return list(vectors)

    @staticmethod
    def name() -> str:
        return "st_plugins"  # the key Chroma stores and looks up in its registry

    def default_space(self) -> Space:
        """Chroma space matching the model's similarity function (``"cosine"`` for all-MiniLM-L6-v2)."""
        return _SPACES[self.model.similarity_fn_name]

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        """Every setting, JSON-serializable; :meth:`build_from_config` rebuilds the same function."""
        return {key: getattr(self, key) for key in _SETTINGS} | {"prompts": dict(self.prompts) or None}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        ChromaEmbeddingFunction.validate_config(config)
        return ChromaEmbeddingFunction(**config)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Refuse a config that is not a dict of known settings with a ``model_name``."""
        if not isinstance(config, dict) or "model_name" not in config:
            raise InputValueError(f"An st_plugins embedding config must be a dict with `model_name`; got {config!r}.")
        unknown = sorted(set(config) - set(_SETTINGS))
        if unknown:
            raise InputValueError(f"Unknown st_plugins embedding settings {unknown}; allowed: {list(_SETTINGS)}.")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Allow ``device`` / ``batch_size`` changes; refuse any change that alters the vectors."""
        changed = [k for k in VECTOR_SETTINGS if k in new_config and new_config[k] != old_config.get(k)]
        if changed:
            was = {k: old_config.get(k) for k in changed}
            now = {k: new_config[k] for k in changed}
            raise InputValueError(
                f"Cannot change {changed} of this collection's embedding function: its vectors were made with "
                f"{was}, and {now} would give vectors that do not match. Create a new collection and re-index instead."
            )


def _check_prompts(prompts: Any) -> dict[str, str]:
    if prompts is None:
        return {}
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise InputTypeError(f"`prompts` must be a dict of str to str, e.g. {{'query': 'query: '}}; got {prompts!r}.")
    unknown = sorted(set(prompts) - {"query", "document"})
    if unknown:
        raise InputValueError(f"`prompts` keys must be 'query' and/or 'document'; got {unknown}.")
    return dict(prompts)
