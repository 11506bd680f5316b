"""SigLIP's tokenizer read from ``spiece.model`` without transformers, against transformers' slow
``SiglipTokenizer`` (the ``sentencepiece`` library) on the tiny SigLIP's SentencePiece model."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("sentencepiece")
transformers = pytest.importorskip("transformers")

from st_plugins.core.runtime.sentencepiece import read_spm, siglip_canonicalizer, siglip_tokenizer_json  # noqa: E402
from st_plugins.core.runtime.tokenizer import TextTokenizer  # noqa: E402
from st_plugins.errors import ModelFormatError  # noqa: E402
from tests import factories  # noqa: E402

# Letters the vocabulary has and lacks, ASCII punctuation (removed by SigLIP), non-ASCII punctuation (kept), NFKC
# forms (ligatures, circled digits, full-width), upper case with special lower-casing (İ, Σ at a word end), the
# SentencePiece word mark, and every kind of whitespace Python's \s knows (\x1c-\x1f are not Rust's).
_PIECES = (list("abcdefghijklmnop ,.!?'\"-_/()[]{}@#$%^&*~`|\\:;<>+=0123456789") +
           ["photo", "cat", " dog", "A", "PHOTO", "Ä", "é", "ß", "İ", "Å", "ΟΔΟΣ", "Σ", "ﬁ", "①", "Ｆｕｌｌ",
            "…", "–", "«", "»", "¿", "\u2581", "ΑΣ'Β", "ΑΣ.", "σΣ", " Σ ", "ǅ", "ﬀ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1f", "\x85",
            "\xa0", "\u2003", "\u3000", "\u2028", "\u200b", "  ", "😀", "漢字"])


def _samples(n: int = 2000) -> list[str]:
    rng = random.Random(20261207)
    fixed = ["A photo of a Cat.", "", " ", "...", "hello   world", "\u2581x", "ﬁne ①", "a handwritten digit seven"]
    return fixed + ["".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 40))) for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizers():
    folder = factories.tiny_siglip("plain")
    assert not (folder / "tokenizer.json").exists()  # spiece.model only, as SigLIP ships
    slow = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert type(slow).__name__ == "SiglipTokenizer"
    ours = TextTokenizer.from_folder(folder, backend_json=siglip_tokenizer_json(folder))
    ours.max_length = 10_000
    return slow, ours


def test_siglip_tokenizer_ids_equal_the_slow_tokenizer(tokenizers):
    slow, ours = tokenizers
    texts = _samples()
    got = [e.ids for e in ours.encode(texts)]
    want = [slow(t)["input_ids"] for t in texts]
    wrong = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    assert not wrong, f"{len(wrong)} of {len(texts)} differ, e.g. {wrong[:3]}"
    assert sum(len(w) > 3 for w in want) > len(texts) // 2  # most samples are real token sequences


def test_siglip_canonicalization_equals_the_slow_tokenizers(tokenizers):
    """Independent of the vocabulary: our normalizer's first step against ``canonicalize_text`` itself."""
    slow, _ = tokenizers
    ours = siglip_canonicalizer(do_lower_case=True)
    texts = _samples() + ["ΟΔΟΣ ΟΔΟΣ.", "ΑΣ", "Σ", "ΑΣΑ", "İstanbul", "ΑΣ\u0301"]
    wrong = [(t, slow.canonicalize_text(t.replace("\u2581", " ")), ours.normalize_str(t)) for t in texts
             if slow.canonicalize_text(t.replace("\u2581", " ")) != ours.normalize_str(t)]
    assert not wrong, f"{len(wrong)} of {len(texts)} differ, e.g. {wrong[:3]}"


def test_siglip_model_file_reads_as_sentencepiece_reads_it():
    """Our protobuf reader against the sentencepiece library on the same file: pieces, scores, types, settings."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    path = factories.tiny_siglip("plain") / "spiece.model"
    ours, proto = read_spm(path), sentencepiece_model_pb2.ModelProto.FromString(path.read_bytes())
    assert ours.pieces == [(p.piece, p.score, p.type) for p in proto.pieces]
    assert len(ours.pieces) == spm.SentencePieceProcessor(model_file=str(path)).get_piece_size()
    assert (ours.model_type, ours.unk_id, ours.byte_fallback) == (proto.trainer_spec.model_type,
                                                                  proto.trainer_spec.unk_id,
                                                                  proto.trainer_spec.byte_fallback)
    spec = proto.normalizer_spec
    assert (ours.precompiled_charsmap, ours.add_dummy_prefix, ours.remove_extra_whitespaces,
            ours.escape_whitespaces) == (spec.precompiled_charsmap, spec.add_dummy_prefix,
                                         spec.remove_extra_whitespaces, spec.escape_whitespaces)
    assert len(ours.precompiled_charsmap) > 1000  # nmt_nfkc's map was read, not a default


def test_siglip_tokenizer_facts(tokenizers):
    slow, ours = tokenizers
    assert ours.facts.pad_token_id == slow.pad_token_id == 1
    assert ours.facts.model_max_length == slow.model_max_length == 16
    assert set(ours.facts.special_ids) == set(slow.all_special_ids)


def test_siglip_tokenizer_refuses_a_broken_model(tmp_path):
    (tmp_path / "spiece.model").write_bytes(b"\x00not a sentencepiece model\xff" * 3)
    with pytest.raises(ModelFormatError, match="spiece.model"):
        siglip_tokenizer_json(tmp_path)
