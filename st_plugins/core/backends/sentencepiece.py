"""A SentencePiece tokenizer (``spiece.model``) as a ``tokenizers`` file, for folders that ship no ``tokenizer.json``.

SigLIP folders carry only ``spiece.model``: transformers tokenizes them with its slow ``SiglipTokenizer``
(the ``sentencepiece`` library). The runtime needs one ``tokenizer.json`` for every model, so this module
writes the equivalent one, once, when the graphs are built (transformers is there then):

- SigLIP's canonicalization in front, as ``SiglipTokenizer.canonicalize_text`` does: ``▁`` read as a space,
  lower-case (``do_lower_case``), ASCII punctuation removed, runs of (Python) whitespace to one space, stripped;
- then the SentencePiece model itself through transformers' own converter (its precompiled normalizer, the
  dummy prefix, the unigram pieces and scores);
- ``</s>`` appended (``$A </s>``), the special tokens of ``tokenizer_config.json`` kept whole.

The test suite compares the ids with ``SiglipTokenizer``'s on fuzzed texts (Unicode, NFKC forms, every kind of
whitespace). Known difference: a text that itself contains a special token's string (``</s>``, ``<unk>``) is split
there by both, but the slow tokenizer then gives the following piece no word prefix and does not append a second
``</s>`` after a literal one at the end.
"""

from __future__ import annotations

import re
import string
import sys
from pathlib import Path
from typing import Any

from st_plugins.errors import ModelFormatError

__all__ = ["has_sentencepiece_only", "siglip_tokenizer_json"]


def _python_space() -> str:
    """What Python's ``re`` ``\\s`` matches in a str (``str.isspace``); Rust's ``\\s`` leaves out U+001C..U+001F."""
    return "".join(re.escape(chr(c)) for c in range(sys.maxunicode + 1) if chr(c).isspace())


def has_sentencepiece_only(folder: Path) -> bool:
    """Whether ``folder`` has a SentencePiece model but no ``tokenizer.json``."""
    return (folder / "spiece.model").is_file() and not (folder / "tokenizer.json").is_file()


def _config(folder: Path) -> dict[str, Any]:
    from st_plugins.core.spec import read_json

    return read_json(folder / "tokenizer_config.json", objects_only=True, missing={},
                     fix="Fix or re-save the tokenizer.")


def _text(value: Any, default: str) -> str:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else default


def siglip_tokenizer_json(folder: str | Path) -> str:
    """``tokenizer.json`` content equal to ``SiglipTokenizer`` on ``folder``'s ``spiece.model`` (needs transformers).

    Raises:
        ModelFormatError: ``spiece.model`` is missing or not a SentencePiece unigram model.
        MissingDependencyError: transformers is not installed.
    """
    from st_plugins.core.extras import torch_installed, torch_missing

    folder = Path(folder)
    path = folder / "spiece.model"
    if not path.is_file():
        raise ModelFormatError(f"{folder} has neither tokenizer.json nor spiece.model; save the model's tokenizer.")
    if not torch_installed():
        raise torch_missing(f"{folder} has only a SentencePiece tokenizer (spiece.model), which is converted once "
                            "with transformers")
    from tokenizers import AddedToken, Regex, normalizers, processors
    from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf

    proto = import_protobuf().ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as exc:  # protobuf's DecodeError and kin
        raise ModelFormatError(f"{path} is not a readable SentencePiece model ({exc}); re-save the tokenizer.") from exc
    if proto.trainer_spec.model_type != 1:
        raise ModelFormatError(f"{path}: only SentencePiece unigram models are converted (SigLIP's); this one has "
                               f"model type {proto.trainer_spec.model_type}.")
    vocab = [(p.piece, p.score) for p in proto.pieces]
    tok = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=True)
    config = _config(folder)
    canon = [normalizers.Replace("\u2581", " ")]
    if config.get("do_lower_case", True):
        canon.append(normalizers.Lowercase())
    canon += [normalizers.Replace(Regex("[" + re.escape(string.punctuation) + "]"), ""),
              normalizers.Replace(Regex(f"[{_python_space()}]+"), " "), normalizers.Strip()]
    tok.normalizer = normalizers.Sequence(canon + ([tok.normalizer] if tok.normalizer is not None else []))
    eos = _text(config.get("eos_token"), "</s>")
    specials = [eos] + [_text(config.get(k), "") for k in ("unk_token", "pad_token")]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in dict.fromkeys(specials) if s])
    eos_id = tok.token_to_id(eos)
    if eos_id is None:
        raise ModelFormatError(f"{path} has no piece for the end token {eos!r}; re-save the tokenizer.")
    tok.post_processor = processors.TemplateProcessing(single=f"$A {eos}", pair=f"$A {eos} $B {eos}",
                                                       special_tokens=[(eos, eos_id)])
    return tok.to_str()
