"""How an image-text model's texts become token batches, as sentence-transformers 6.2 makes them.

- **The tokenizer**: the folder's ``tokenizer.json``; for SigLIP, its ``spiece.model`` (what transformers'
  ``SiglipTokenizer`` reads, even beside a ``tokenizer.json``) through :mod:`st_plugins.core.runtime.sentencepiece`.
- **The padding**: SigLIP's text tower pools the last position and was trained on texts padded to the maximum
  length, so its texts are padded so by default (a vector then does not depend on the rest of its batch;
  sentence-transformers pads to the longest of each batch unless told otherwise). A current-layout folder's
  ``processing_kwargs`` (``text``: ``padding``, ``max_length``, ``padding_side``, ``truncation``) are applied as sentence-transformers applies them; keys it would pass on that this runtime does not reproduce
  are refused with ``ModelFormatError`` instead of being ignored.
- **The features**: those the tokenizer returns (``model_input_names``): no attention mask when it gives none.
- **The order**: when padding to the longest of a batch changes vectors (SigLIP), texts are batched in
  sentence-transformers' order (longest in characters first), so each text gets the batch it gets there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.errors import ModelFormatError

__all__ = ["TextSettings", "text_settings", "tokenizer_outputs", "text_tokenizer", "padding_sensitive",
           "sentence_transformers_order", "FIXED_LENGTH_TYPES"]

#: model types whose texts are padded to the maximum length unless the folder says otherwise; their vectors
#: change with the padding (the text tower pools the last position)
FIXED_LENGTH_TYPES = ("siglip",)
#: a SigLIP text tower's max_position_embeddings when its config leaves it out (transformers' default)
_DEFAULT_POSITIONS = {"siglip": 64}
_TEXT_KEYS = {"padding", "max_length", "padding_side", "truncation"}


@dataclass(frozen=True)
class TextSettings:
    """The text processing a folder asks for (``None``: not said, the model type decides)."""

    padding: str | None = None  # "max_length" or "longest"
    max_length: int | None = None
    padding_side: str | None = None  # "left" or "right"


def _check(kwargs: Any, key: str, path: Path) -> dict[str, Any]:
    value = kwargs.get(key) or {}
    if not isinstance(value, dict):
        raise ModelFormatError(f"{path}: processing_kwargs.{key} must be a JSON object; got {type(value).__name__}. "
                               "Fix or re-save the model.")
    return value


def text_settings(bert_config: dict[str, Any], path: Path) -> TextSettings:
    """The text settings of a current-layout ``sentence_bert_config.json`` (``path``, for the messages).

    Raises:
        ModelFormatError: ``processing_kwargs`` that are malformed or ask for what is not reproduced here.
    """
    kwargs = bert_config.get("processing_kwargs")
    if kwargs is None:
        return TextSettings()
    if not isinstance(kwargs, dict):
        raise ModelFormatError(f"{path}: processing_kwargs must be a JSON object; got {type(kwargs).__name__}. "
                               "Fix or re-save the model.")
    if _check(kwargs, "image", path):
        raise ModelFormatError(f"{path}: processing_kwargs.image is not served (the saved image processor's settings "
                               "are); remove it or save the processor with those settings.")
    common = sorted(set(_check(kwargs, "common", path)) - {"return_tensors"})
    if common:  # transformers' processors take only return_tensors there
        raise ModelFormatError(f"{path}: processing_kwargs.common {common} are not served; put text settings under "
                               "processing_kwargs.text.")
    merged = _check(kwargs, "text", path)
    unknown = sorted(set(merged) - _TEXT_KEYS)
    if unknown:
        raise ModelFormatError(f"{path}: processing_kwargs {unknown} are not served for texts (only "
                               f"{sorted(_TEXT_KEYS)}); remove them.")
    padding, length, side, truncation = (merged.get(k) for k in ("padding", "max_length", "padding_side", "truncation"))
    if padding not in (None, True, "longest", "max_length"):
        raise ModelFormatError(f"{path}: processing_kwargs.text.padding {padding!r} is not served; use 'max_length', "
                               "'longest' or true.")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length <= 0):
        raise ModelFormatError(f"{path}: processing_kwargs.text.max_length must be a positive integer; got {length!r}.")
    if side not in (None, "left", "right"):
        raise ModelFormatError(f"{path}: processing_kwargs.text.padding_side must be 'left' or 'right'; got {side!r}.")
    if truncation not in (None, True, "longest_first", "only_first"):
        raise ModelFormatError(f"{path}: processing_kwargs.text.truncation {truncation!r} is not served; texts are "
                               "truncated to the maximum length (true / 'longest_first').")
    return TextSettings(padding=None if padding is None else "max_length" if padding == "max_length" else "longest",
                        max_length=length, padding_side=side)


def padding_sensitive(model_type: str) -> bool:
    """Whether the padding of a text changes its vector (the text tower pools the last position)."""
    return model_type in FIXED_LENGTH_TYPES


def fixed_length(model_type: str, settings: TextSettings) -> bool:
    """Whether texts are padded to the maximum length: what the folder says, else by model type."""
    if settings.padding is not None:
        return settings.padding == "max_length"
    return model_type in FIXED_LENGTH_TYPES


def tokenizer_outputs(model_dir: Path) -> tuple[str, ...]:
    """The features the folder's tokenizer returns (``model_input_names`` of ``tokenizer_config.json``, else all)."""
    from st_plugins.core.spec import read_json

    config = read_json(model_dir / "tokenizer_config.json", objects_only=True, missing={},
                       fix="Fix or re-save the tokenizer.")
    names = config.get("model_input_names")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return tuple(names)
    return ("input_ids", "attention_mask", "token_type_ids")


def text_tokenizer(model_dir: Path, config: dict[str, Any], max_seq_length: int | None, settings: TextSettings) -> Any:
    """The text tokenizer of an image-text folder, with its length, padding and padding side.

    Args:
        config: The model's ``config.json``.
        max_seq_length: ``sentence_bert_config.json``'s, if any.

    Raises:
        ModelFormatError: No usable tokenizer, or fixed-length padding with no maximum length known.
    """
    import dataclasses

    from st_plugins.core.runtime.sentencepiece import SIGLIP_DEFAULTS, siglip_tokenizer_json
    from st_plugins.core.runtime.tokenizer import TextTokenizer, max_length_rule
    from st_plugins.core.spec import read_json

    kind = str(config.get("model_type"))
    siglip = kind == "siglip" and (model_dir / "spiece.model").is_file()
    tokenizer = TextTokenizer.from_folder(model_dir, backend_json=siglip_tokenizer_json(model_dir) if siglip else None)
    text_config = config.get("text_config") or {}
    positions = text_config.get("max_position_embeddings", _DEFAULT_POSITIONS.get(kind))
    tokenizer.max_length = max_length_rule(None, settings.max_length or max_seq_length,
                                           tokenizer.facts.model_max_length, positions)
    facts = tokenizer.facts
    if siglip:  # SiglipTokenizer pads with </s> when the files name no pad token
        fix = "Fix or re-save the tokenizer."
        named = {**read_json(model_dir / "special_tokens_map.json", objects_only=True, missing={}, fix=fix),
                 **read_json(model_dir / "tokenizer_config.json", objects_only=True, missing={}, fix=fix)}
        if not named.get("pad_token"):
            pad = tokenizer.token_id(SIGLIP_DEFAULTS["pad_token"])
            facts = dataclasses.replace(facts, pad_token_id=pad if pad is not None else facts.pad_token_id)
    if settings.padding_side:
        facts = dataclasses.replace(facts, padding_side=settings.padding_side)
    if facts != tokenizer.facts:
        tokenizer = tokenizer.copy(facts)
    if fixed_length(kind, settings):
        if tokenizer.max_length > 100_000:
            raise ModelFormatError(f"{model_dir}: texts are padded to the maximum length, but neither the tokenizer "
                                   "(model_max_length in tokenizer_config.json) nor the config gives one; set one.")
        tokenizer.fixed_length = True
    return tokenizer


def sentence_transformers_order(texts: list[str]) -> np.ndarray:
    """The order sentence-transformers 6.2 batches texts in: ``np.argsort`` of minus the length in characters.

    Example:
        >>> sentence_transformers_order(["ab", "abcd", "a"]).tolist()
        [1, 0, 2]
    """
    return np.argsort([-len(t) for t in texts])
