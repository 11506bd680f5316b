"""Text to padded numpy batches: the one tokenizer of every path, with the max-length and prompt rules.

A :class:`TextTokenizer` wraps a ``tokenizers.Tokenizer`` (the fast tokenizer transformers itself runs)
plus the few facts transformers keeps beside it (pad id, padding side, ``model_max_length``, special
ids). The runtime reads them from a graph's ``tokenizer.json`` + ``meta.json``; the torch path takes
them from transformers' ``AutoTokenizer`` (:meth:`TextTokenizer.from_transformers`). Either way the
same code truncates, measures prompts and pads, so every path sees the same token ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from st_plugins.core.extras import TORCH_EXTRA
from st_plugins.errors import ModelFormatError, require

__all__ = ["TokenizerFacts", "TextTokenizer", "max_length_rule", "length_order"]


def max_length_rule(explicit: int | None, configured: int | None, tokenizer_max: int | None,
                    position_limit: int | None) -> int:
    """The token limit, as sentence-transformers picks it for both model kinds.

    ``explicit`` (the caller's), else ``configured`` (``sentence_bert_config.json``), else the
    tokenizer's ``model_max_length`` capped at ``max_position_embeddings`` (when that is positive).

    Example:
        >>> max_length_rule(None, None, 10**30, 512), max_length_rule(None, 256, 512, 512), max_length_rule(64, 256, 512, 512)
        (512, 256, 64)
    """
    for value in (explicit, configured):
        if value:
            return int(value)
    tokenizer_max = int(tokenizer_max or 10**30)
    if position_limit is not None and int(position_limit) > 0:
        return int(min(tokenizer_max, int(position_limit)))
    return tokenizer_max


def _cut_at_word_end(text: str, encoding: Any, at_least: int) -> tuple[str, int]:
    """``(prefix, tokens)``: ``text`` up to the end of the first word that ends at or after token ``at_least``
    (the whole text when none does), and how many tokens that prefix has."""
    words = encoding.word_ids
    for k in range(max(at_least, 1), len(words)):
        if words[k] != words[k - 1]:
            return text[: encoding.offsets[k - 1][1]], k
    return text, len(words)


def length_order(lengths: Sequence[int]) -> np.ndarray:
    """Indices from longest to shortest input (stable), as sentence-transformers orders batches.

    Example:
        >>> length_order([2, 5, 2, 7]).tolist()
        [3, 1, 0, 2]
    """
    return np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")


@dataclass(frozen=True)
class TokenizerFacts:
    """What transformers keeps beside the fast tokenizer (stored in a graph's ``meta.json``)."""

    pad_token_id: int = 0
    padding_side: str = "right"
    model_max_length: int = 10**30
    special_ids: tuple[int, ...] = ()
    lowercase: bool = False  # sentence-transformers' ``do_lower_case``: a Lowercase normalizer in front

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "special_ids": list(self.special_ids)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenizerFacts:
        return cls(**{**data, "special_ids": tuple(data.get("special_ids", ()))})


def _read_json_file(path: Any) -> dict[str, Any]:
    """A tokenizer config file as a dict ({} when absent); a malformed one is a typed error naming it."""
    from st_plugins.core.spec import read_json

    return read_json(path, objects_only=True, missing={}, fix="Fix or re-save the tokenizer.")


def _bert_normalizer_settings(data: dict[str, Any], config: dict[str, Any]) -> None:
    """Apply ``tokenizer_config.json``'s lower-casing / accent / CJK options to a ``BertNormalizer`` (in place)."""
    normalizer = data.get("normalizer")
    if not isinstance(normalizer, dict) or normalizer.get("type") != "BertNormalizer":
        return
    for option, key in (("do_lower_case", "lowercase"), ("strip_accents", "strip_accents"),
                        ("tokenize_chinese_chars", "handle_chinese_chars")):
        if option in config:
            normalizer[key] = config[option]


def _add_lowercase(backend: Any) -> None:
    """Put a Lowercase normalizer in front (sentence-transformers' ``do_lower_case``), once."""
    from tokenizers.normalizers import Lowercase, Sequence as NormSeq

    current = backend.normalizer
    if current is not None and ("Lowercase" in repr(current) or "lowercase=True" in repr(current)):
        return
    parts = [Lowercase()] + ([] if current is None else list(current) if isinstance(current, NormSeq) else [current])
    backend.normalizer = NormSeq(parts)


class TextTokenizer:
    """Token ids for texts or pairs, truncated to :attr:`max_length`, padded per batch into numpy.

    Args:
        backend_json: A serialized ``tokenizers.Tokenizer`` (``tokenizer.json`` content).
        facts: Pad id, padding side, ``model_max_length``, special ids, lower-casing.
        max_length: Truncation length (``longest_first`` for pairs).
        fixed_length: Pad every batch to ``max_length`` (what transformers' ``padding="max_length"`` gives; the
            text towers of SigLIP were trained so and pool the last position), not to its longest input.
    """

    def __init__(self, backend_json: str, facts: TokenizerFacts, max_length: int, fixed_length: bool = False) -> None:
        tokenizers = require("tokenizers", "onnx")
        self.backend_json, self.facts = backend_json, facts
        self.fixed_length = fixed_length  # pad every batch to max_length (SigLIP), not to its longest input
        self._tok = tokenizers.Tokenizer.from_str(backend_json)
        self._tok.no_padding()  # a file may pad every input to a fixed length: pad per batch instead
        self._tok.no_truncation()
        if facts.lowercase:
            _add_lowercase(self._tok)
        self._prompt_lengths: dict[str, int] = {}
        self._plain: Any = None  # the same tokenizer without truncation (see _shorten_pairs), made on first need
        self.max_length = max_length

    @classmethod
    def from_transformers(cls, hf_tokenizer: Any, max_length: int | None = None, lowercase: bool = False) -> TextTokenizer:
        """Wrap a transformers fast tokenizer (the torch path, and graph builds).

        Raises:
            ModelFormatError: The tokenizer has no fast (``tokenizers``) version.
        """
        if not getattr(hf_tokenizer, "is_fast", False):
            raise ModelFormatError(
                f"{type(hf_tokenizer).__name__} is a slow tokenizer; st_plugins needs a fast one (tokenizer.json). "
                "Save the model with a fast tokenizer, e.g. AutoTokenizer.from_pretrained(path, use_fast=True)."
            )
        facts = TokenizerFacts(
            pad_token_id=int(hf_tokenizer.pad_token_id) if hf_tokenizer.pad_token_id is not None else 0,
            padding_side=str(getattr(hf_tokenizer, "padding_side", "right")),
            model_max_length=int(min(hf_tokenizer.model_max_length, 10**30)),
            special_ids=tuple(int(i) for i in hf_tokenizer.all_special_ids),
            lowercase=lowercase,
        )
        return cls(hf_tokenizer.backend_tokenizer.to_str(), facts, max_length or facts.model_max_length)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, max_length: int | None = None, lowercase: bool = False,
                    backend_json: str | None = None) -> TextTokenizer:
        """The tokenizer transformers would load from ``folder``, read without transformers.

        ``tokenizer.json`` is the fast tokenizer itself; ``tokenizer_config.json`` and
        ``special_tokens_map.json`` give the facts (pad token, padding side, ``model_max_length``, special
        tokens). For the BERT family, the config's ``do_lower_case`` / ``strip_accents`` /
        ``tokenize_chinese_chars`` override the file's normalizer, as transformers' tokenizer does.
        The test suite compares the token ids with transformers' for every covered architecture.
        ``backend_json`` stands in for a missing ``tokenizer.json`` (a converted SentencePiece model).

        Raises:
            ModelFormatError: ``tokenizer.json`` is missing or unreadable, or a config file is malformed.
        """
        import json
        from pathlib import Path

        folder = Path(folder)
        path = folder / "tokenizer.json"
        if backend_json is None and not path.is_file():
            raise ModelFormatError(
                f"{folder} has no tokenizer.json (a fast tokenizer); without transformers it cannot be converted. "
                f"Install the torch extra ({TORCH_EXTRA}), or save the tokenizer with "
                "AutoTokenizer.from_pretrained(path).save_pretrained(path)."
            )
        config = _read_json_file(folder / "tokenizer_config.json")
        special = {**_read_json_file(folder / "special_tokens_map.json"), **config}
        try:
            data = json.loads(backend_json if backend_json is not None else path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ModelFormatError(f"{path} is not a readable tokenizer file ({exc}); re-save the tokenizer.") from exc
        _bert_normalizer_settings(data, config)
        backend_json = json.dumps(data, ensure_ascii=False)
        tok = require("tokenizers", "onnx").Tokenizer.from_str(backend_json)

        def token_id(value: Any) -> int | None:
            text = value.get("content") if isinstance(value, dict) else value
            return tok.token_to_id(text) if isinstance(text, str) else None

        names = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
        ids = [token_id(special.get(n)) for n in names]
        extra = special.get("additional_special_tokens") or special.get("extra_special_tokens") or []
        ids += [token_id(t) for t in (extra if isinstance(extra, list) else [])]
        pad = token_id(special.get("pad_token"))
        limit = config.get("model_max_length")
        facts = TokenizerFacts(
            pad_token_id=int(pad) if pad is not None else 0,
            padding_side=str(config.get("padding_side") or "right"),
            model_max_length=int(min(float(limit), 10**30)) if isinstance(limit, (int, float)) else 10**30,
            special_ids=tuple(dict.fromkeys(int(i) for i in ids if i is not None)),
            lowercase=lowercase,
        )
        return cls(backend_json, facts, max_length or facts.model_max_length)

    @property
    def max_length(self) -> int:
        return self._max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self._max_length = int(value)
        self._tok.enable_truncation(max_length=min(self._max_length, 10**9), strategy="longest_first")
        self._prompt_lengths.clear()

    def copy(self, facts: TokenizerFacts | None = None) -> TextTokenizer:
        """An independent tokenizer with the same file, length and padding (and ``facts``, when given): changing
        the copy's :attr:`max_length` leaves this one alone."""
        return TextTokenizer(self.backend_json, facts or self.facts, self._max_length, fixed_length=self.fixed_length)

    def token_id(self, text: str) -> int | None:
        """The id of token ``text`` in the vocabulary (``None`` when it has none)."""
        return self._tok.token_to_id(text)

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[Any]:
        """``tokenizers.Encoding`` per input (special tokens added, truncated, not padded)."""
        if not texts:
            return []
        inputs = list(texts) if pairs is None else list(zip(*self._shorten_pairs(list(texts), list(pairs))))
        return self._tok.encode_batch(inputs)

    def _shorten_pairs(self, firsts: list[str], seconds: list[str]) -> tuple[list[str], list[str]]:
        """Pairs whose two texts both run far past the limit, cut at word ends past it: the same tokens are kept.

        tokenizers truncates a pair by combining every overflowing piece of one side with every piece of the
        other: two 100,000-character texts take minutes and gigabytes. A text cut at the end of a word past
        the limit tokenizes to the same first tokens; which side is longer (what ``longest_first`` looks
        at, besides the lengths below the limit) is kept too.
        """
        limit = self._max_length
        for i, (a, b) in enumerate(zip(firsts, seconds)):
            if min(len(a), len(b)) <= 4 * limit:  # at most a few pieces on one side: linear, leave it
                continue
            if self._plain is None:
                plain = require("tokenizers", "onnx").Tokenizer.from_str(self._tok.to_str())
                plain.no_truncation()
                self._plain = plain
            ea, eb = self._plain.encode_batch([a, b], add_special_tokens=False)
            if min(len(ea.ids), len(eb.ids)) <= limit:
                continue
            if len(ea.ids) > len(eb.ids):
                seconds[i], kept = _cut_at_word_end(b, eb, limit + 1)
                firsts[i], _ = _cut_at_word_end(a, ea, kept + 1)
            else:
                firsts[i], kept = _cut_at_word_end(a, ea, limit + 1)
                seconds[i], _ = _cut_at_word_end(b, eb, kept)
        return firsts, seconds

    def prompt_length(self, prompt: str) -> int:
        """Tokens of ``prompt`` alone, without a trailing special token (sentence-transformers' rule).

        Example:
            >>> tok = TextTokenizer(_WORD_LEVEL_JSON, TokenizerFacts(special_ids=(1,)), 8)
            >>> tok.prompt_length("a b")  # [a, b, SEP]: the trailing SEP is not the prompt's
            2
        """
        if prompt not in self._prompt_lengths:
            ids = self._tok.encode(prompt).ids
            self._prompt_lengths[prompt] = len(ids) - (1 if ids and ids[-1] in self.facts.special_ids else 0)
        return self._prompt_lengths[prompt]

    def batch(self, encodings: Sequence[Any]) -> dict[str, np.ndarray]:
        """One padded batch: ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64)."""
        width = max(len(e.ids) for e in encodings)
        if self.fixed_length:
            width = max(width, self._max_length)
        ids = np.full((len(encodings), width), self.facts.pad_token_id, dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        left = self.facts.padding_side == "left"
        for row, e in enumerate(encodings):
            n = len(e.ids)
            cols = slice(width - n, width) if left else slice(0, n)
            ids[row, cols], types[row, cols], mask[row, cols] = e.ids, e.type_ids, 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def batches(self, encodings: Sequence[Any], batch_size: int,
                order: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """``(indices, features)`` per batch, longest inputs first (little padding), or in ``order``."""
        if order is None:
            order = length_order([len(e.ids) for e in encodings])
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield idx, self.batch([encodings[i] for i in idx])


# A two-word vocabulary for the doctests: "[SEP]" (id 1) appended by the post-processor.
_WORD_LEVEL_JSON = (
    '{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [{"id": 1, "content": "[SEP]", '
    '"single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}], '
    '"normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": {"type": "TemplateProcessing", '
    '"single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}], '
    '"pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}], '
    '"special_tokens": {"[SEP]": {"id": "[SEP]", "ids": [1], "tokens": ["[SEP]"]}}}, "decoder": null, '
    '"model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "[SEP]": 1, "a": 2, "b": 3}, "unk_token": "[UNK]"}}'
)
