"""SigLIP's SentencePiece tokenizer (``spiece.model``) as a ``tokenizers`` pipeline, without transformers.

SigLIP folders carry only ``spiece.model``, which transformers reads with its slow ``SiglipTokenizer`` (the
``sentencepiece`` library). The runtime needs one ``tokenizers`` pipeline for every model, so this module builds
the equivalent one from the model file (a protobuf message, read here by a small wire-format reader):

1. SigLIP's canonicalization, as ``SiglipTokenizer`` does before SentencePiece sees the text: ``▁`` read as a
   space, lower-case (``do_lower_case``; a final capital sigma becomes ``ς`` as in Python's ``str.lower``),
   ASCII punctuation removed, runs of whitespace (what Python's ``\\s`` matches) to one space, stripped;
2. SentencePiece's own normalization, in its order: the precompiled character map (e.g. ``nmt_nfkc``), extra
   spaces removed, spaces to ``▁``, the dummy ``▁`` prefix;
3. the unigram pieces and scores; ``</s>`` appended (``$A </s>``); the tokenizer's added tokens kept whole.

The test suite compares the ids with ``SiglipTokenizer``'s on fuzzed texts, and step 1 with its
``canonicalize_text``. Known differences: a text that itself contains an added token's string (``</s>``,
``<unk>``) is split there by both, but the slow tokenizer gives the following piece no word prefix and appends
no second ``</s>`` after a literal one at the end; decomposed (not NFC) text with several combining marks on one
letter, or graphemes of 6 bytes and more, is normalized otherwise by the ``tokenizers`` library's character map
than by SentencePiece (huggingface/tokenizers#2116 and #2334, open upstream; transformers' converted fast
tokenizers share it); lower-casing follows the Unicode tables of Rust's standard library, not of the running
Python (a few dozen recent characters differ).
"""

from __future__ import annotations

import functools
import re
import string
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_plugins.core.spec import read_json
from st_plugins.errors import ModelFormatError

__all__ = ["SpmModel", "read_spm", "siglip_canonicalizer", "siglip_tokenizer_json", "SIGLIP_DEFAULTS"]

#: SiglipTokenizer's defaults for what tokenizer_config.json / special_tokens_map.json leave out
SIGLIP_DEFAULTS = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>", "do_lower_case": True}
_USER_DEFINED, _UNIGRAM = 4, 1


@dataclass
class SpmModel:
    """What the tokenizer needs of a SentencePiece ``ModelProto`` (proto defaults where a field is absent)."""

    pieces: list[tuple[str, float, int]] = field(default_factory=list)  # (piece, score, type)
    model_type: int = _UNIGRAM
    unk_id: int = 0
    byte_fallback: bool = False
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True


def _fields(data: bytes) -> Iterator[tuple[int, Any]]:
    """``(field number, value)`` of a protobuf message: ints for varints, bytes for the rest (fixed32 included)."""
    pos, end = 0, len(data)

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= end:
                raise ValueError("truncated varint")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    while pos < end:
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, varint()
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise ValueError("truncated fixed-width field")
            yield number, data[pos : pos + size]
            pos += size
        elif wire == 2:
            size = varint()
            if pos + size > end:
                raise ValueError("truncated length-delimited field")
            yield number, data[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"wire type {wire} is not used by SentencePiece models")


def _varint(value: Any) -> int:
    if not isinstance(value, int):
        raise ValueError("a setting stored with the wrong wire type")
    return value


def _blob(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError("a setting stored with the wrong wire type")
    return value


def _flag(value: Any) -> bool:
    return bool(_varint(value))


#: The settings read, per ModelProto field: {field number: {its field number: (SpmModel attribute, conversion)}}
_SPECS = {2: {3: ("model_type", _varint), 35: ("byte_fallback", _flag), 40: ("unk_id", _varint)},  # TrainerSpec
          3: {2: ("precompiled_charsmap", _blob), 3: ("add_dummy_prefix", _flag),  # NormalizerSpec
              4: ("remove_extra_whitespaces", _flag), 5: ("escape_whitespaces", _flag)}}


def read_spm(path: str | Path) -> SpmModel:
    """The pieces and the normalizer / trainer settings of a SentencePiece model file.

    Raises:
        ModelFormatError: The file is not a readable SentencePiece model.
    """
    path = Path(path)
    model = SpmModel()
    try:
        for number, value in _fields(path.read_bytes()):
            if number == 1:  # SentencePiece {piece = 1, score = 2 (float), type = 3 (NORMAL by default)}
                piece, score, kind = "", 0.0, 1
                for n, v in _fields(value):
                    if n == 1:
                        piece = v.decode("utf-8")
                    elif n == 2:
                        score = struct.unpack("<f", v)[0]
                    elif n == 3:
                        kind = v
                model.pieces.append((piece, score, kind))
            elif number in _SPECS:  # TrainerSpec, NormalizerSpec
                fields = _SPECS[number]
                for n, v in _fields(value):
                    if n in fields:
                        setattr(model, fields[n][0], fields[n][1](v))
    except (OSError, ValueError, UnicodeDecodeError, struct.error) as exc:
        raise ModelFormatError(f"{path} is not a readable SentencePiece model ({exc}); re-save the tokenizer.") from exc
    if not model.pieces:
        raise ModelFormatError(f"{path} holds no SentencePiece pieces; re-save the tokenizer.")
    return model


_CASED = r"[\p{Lu}\p{Ll}\p{Lt}]"
_IGNORABLE = r"[\p{Mn}\p{Me}\p{Cf}\p{Lm}\p{Sk}'.:^`\u00b7\u2018\u2019\u2024\ufe52\uff07\uff0e]"
#: Python's Final_Sigma rule: a capital sigma after a cased letter and not before one, case-ignorable characters
#: (marks, modifiers, apostrophes, periods, colons) skipped on both sides (up to three of them before it).
_FINAL_SIGMA = (f"(?<={_CASED}|{_CASED}{_IGNORABLE}|{_CASED}{_IGNORABLE}{{2}}|{_CASED}{_IGNORABLE}{{3}})"
                f"\u03a3(?!{_IGNORABLE}*{_CASED})")


@functools.lru_cache(maxsize=1)
def _python_space() -> str:
    """What Python's ``re`` ``\\s`` matches in a str (``str.isspace``); Rust's leaves out U+001C..U+001F."""
    return "".join(re.escape(chr(c)) for c in range(sys.maxunicode + 1) if chr(c).isspace())


def siglip_canonicalizer(do_lower_case: bool = True) -> Any:
    """SigLIP's text canonicalization (``SiglipTokenizer.canonicalize_text`` after its ``▁`` rule) as a
    ``tokenizers`` normalizer.

    Example:
        >>> siglip_canonicalizer().normalize_str("  A Photo,  of a CAT!\\t")
        'a photo of a cat'
    """
    from tokenizers import Regex, normalizers

    steps = [normalizers.Replace("\u2581", " ")]
    if do_lower_case:  # Python lowers a capital sigma at a word end to the final form; Rust's per-char map does not
        steps += [normalizers.Replace(Regex(_FINAL_SIGMA), "\u03c2"), normalizers.Lowercase()]
    steps += [normalizers.Replace(Regex("[" + re.escape(string.punctuation) + "]"), ""),
              normalizers.Replace(Regex(f"[{_python_space()}]+"), " "), normalizers.Strip()]
    return normalizers.Sequence(steps)


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def siglip_tokenizer_json(folder: str | Path) -> str:
    """``tokenizer.json`` content equal to ``SiglipTokenizer`` on ``folder``'s ``spiece.model``.

    Raises:
        ModelFormatError: ``spiece.model`` is missing, unreadable or not a unigram model, or the tokenizer's
            added tokens do not fit its ids.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    folder = Path(folder)
    path = folder / "spiece.model"
    if not path.is_file():
        raise ModelFormatError(f"{folder} has no spiece.model (SigLIP's SentencePiece tokenizer); save the model's "
                               "tokenizer with save_pretrained.")
    spm = read_spm(path)
    if spm.model_type != _UNIGRAM:
        raise ModelFormatError(f"{path}: only SentencePiece unigram models are read (SigLIP's); this one has model "
                               f"type {spm.model_type}.")
    fix = "Fix or re-save the tokenizer."
    config = {**SIGLIP_DEFAULTS, **read_json(folder / "special_tokens_map.json", objects_only=True, missing={}, fix=fix),
              **read_json(folder / "tokenizer_config.json", objects_only=True, missing={}, fix=fix)}
    tok = Tokenizer(models.Unigram([(p, s) for p, s, _ in spm.pieces], unk_id=spm.unk_id,
                                   byte_fallback=spm.byte_fallback))
    steps = [siglip_canonicalizer(bool(config.get("do_lower_case", True)))]
    if spm.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spm.precompiled_charsmap))
    if spm.remove_extra_whitespaces:  # only spaces: SentencePiece leaves other whitespace alone
        steps += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    if spm.escape_whitespaces:
        steps.append(normalizers.Replace(" ", "\u2581"))
    tok.normalizer = normalizers.Sequence(steps)
    splits = []
    if spm.add_dummy_prefix:
        splits.append(pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False))
    user_defined = sorted((p for p, _, kind in spm.pieces if kind == _USER_DEFINED), key=len, reverse=True)
    if user_defined:  # SentencePiece emits them whole
        splits.append(pre_tokenizers.Split(Regex("|".join(re.escape(p) for p in user_defined)), behavior="isolated"))
    if splits:
        tok.pre_tokenizer = pre_tokenizers.Sequence(splits)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    _add_tokens(tok, config, path)
    eos = _token_text(config.get("eos_token")) or "</s>"
    eos_id = tok.token_to_id(eos)
    if eos_id is None:
        raise ModelFormatError(f"{path} has no piece for the end token {eos!r}. {fix}")
    tok.post_processor = processors.TemplateProcessing(single=f"$A {eos}", pair=f"$A {eos} $B {eos}",
                                                       special_tokens=[(eos, eos_id)])
    return tok.to_str()


def _add_tokens(tok: Any, config: dict[str, Any], path: Path) -> None:
    """The slow tokenizer's special and added tokens (split out of the text before it is tokenized), at their ids."""
    from tokenizers import AddedToken

    wanted: dict[str, tuple[int | None, dict[str, Any]]] = {}
    for name in ("eos_token", "unk_token", "pad_token"):
        text = _token_text(config.get(name))
        if text:
            wanted[text] = (None, {"special": True})
    extra = config.get("additional_special_tokens") or config.get("extra_special_tokens") or []
    for item in extra if isinstance(extra, list) else []:
        if _token_text(item):
            wanted[_token_text(item)] = (None, {"special": True})
    decoder = config.get("added_tokens_decoder")
    for key, item in (decoder.items() if isinstance(decoder, dict) else []):
        text = _token_text(item)
        if text and str(key).isdigit():
            flags = {k: bool(item[k]) for k in ("special", "lstrip", "rstrip", "single_word", "normalized")
                     if isinstance(item, dict) and k in item}
            wanted[text] = (int(key), flags)
    for text, (want_id, flags) in sorted(wanted.items(), key=lambda kv: (kv[1][0] is None, kv[1][0] or 0)):
        flags = {"normalized": False, **flags}
        if flags.get("special"):
            tok.add_special_tokens([AddedToken(text, **flags)])
        else:
            tok.add_tokens([AddedToken(text, **flags)])
        got = tok.token_to_id(text)
        if want_id is not None and got != want_id:
            raise ModelFormatError(f"{path.parent / 'tokenizer_config.json'}: added token {text!r} has id {want_id}, "
                                   f"but the SentencePiece model gives it {got}. Fix or re-save the tokenizer.")
