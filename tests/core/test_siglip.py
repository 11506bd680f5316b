"""SigLIP image-text models against sentence-transformers on the same folder.

The folders are :func:`tests.factories.tiny_siglip` (random weights, initializer factor 4; ``spiece.model`` only,
as SigLIP ships). SigLIP's text tower pools the last position, so the padding decides the vector: we pad texts to
the maximum length (as SigLIP was trained, and as its model cards require), which is what sentence-transformers
gives when the folder's ``processing_kwargs`` ask for ``padding="max_length"``; the oracle gets that setting here.
sentence-transformers' default (longest of each batch) makes a text's vector depend on its batch: the tests show
it, and that a folder asking for it is served so, equal to the oracle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sentencepiece")
st = pytest.importorskip("sentence_transformers")
Image = pytest.importorskip("PIL.Image")

from st_plugins import SentenceTransformer  # noqa: E402
from st_plugins.core.multimodal import MultimodalSentenceTransformer, read_image_text_spec  # noqa: E402
from st_plugins.errors import ModelFormatError  # noqa: E402
from tests import factories  # noqa: E402

TOL = 1e-5
ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a photo of a cat", "A dog is eating pasta in the park, number 12! " * 3, "", "Ünïcödé dog",
         "a photo of a dog", "digit seven."] * 3  # 18: more than a batch of 16; one over the 16-token limit


def _images(n: int = 18) -> list:
    rng = np.random.default_rng(7)
    shapes = [(40, 50), (30, 30), (64, 20), (100, 80), (12, 17), (33, 200)]
    out = [Image.fromarray(rng.integers(0, 256, (*shapes[i % len(shapes)], 3), dtype=np.uint8)) for i in range(n)]
    out[3] = out[3].convert("L")
    return out


IMAGES = _images()


def _oracle(folder: Path, padding: str | None = "max_length"):
    model = st.SentenceTransformer(str(folder), device="cpu")
    if padding:
        model[0].processing_kwargs = {"text": {"padding": padding}}
    return model


@pytest.fixture(scope="module", params=["plain", "current"])
def pair(request):
    """(ours, the oracle padding to the maximum length) on one layout of the same tiny SigLIP."""
    folder = factories.tiny_siglip(request.param)
    return SentenceTransformer(str(folder)), _oracle(folder)


def test_siglip_spec():
    spec = read_image_text_spec(factories.tiny_siglip("plain"))
    assert (spec.layout, spec.model_type, spec.dimension, spec.fixed_length) == ("plain", "siglip", 24, True)
    assert read_image_text_spec(factories.tiny_siglip("current")).layout == "current"
    assert read_image_text_spec(factories.tiny_siglip("longest")).fixed_length is False


@pytest.mark.parametrize("batch_size", [1, 16])
def test_siglip_vectors_match_oracle(pair, batch_size):
    ours, oracle = pair
    assert isinstance(ours, MultimodalSentenceTransformer) and ours.graph is not None
    np.testing.assert_allclose(ours.encode(IMAGES, batch_size=batch_size),
                               oracle.encode(IMAGES, batch_size=batch_size), atol=TOL, rtol=0)
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=batch_size),
                               oracle.encode(TEXTS, batch_size=batch_size), atol=TOL, rtol=0)
    # the vectors' width; sentence-transformers 6.2 reports the text tower's hidden size (32) for SigLIP instead
    assert ours.get_embedding_dimension() == oracle.encode("a cat").shape[-1] == 24
    assert ours.max_seq_length == oracle.max_seq_length == 16


def test_siglip_text_vectors_do_not_depend_on_the_batch(pair):
    """Ours: the same vector for a text alone or in a batch. The oracle's default padding: not so."""
    ours, _ = pair
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=1), ours.encode(TEXTS, batch_size=16), atol=1e-6,
                               rtol=0)
    default = _oracle(factories.tiny_siglip("plain"), padding=None)
    alone, batched = default.encode(TEXTS[:6], batch_size=1), default.encode(TEXTS[:6], batch_size=16)
    assert np.abs(alone - batched).max() > 0.1  # sentence-transformers' longest padding moves the short texts


@pytest.mark.parametrize("batch_size", [1, 3, 4, 16])
def test_siglip_folder_asking_for_longest_padding_matches_oracle(batch_size):
    """``processing_kwargs.text.padding: true`` in the folder: padded to the longest of each batch, in the batches
    sentence-transformers makes (longest in characters first), so each text gets the width it gets there."""
    folder = factories.tiny_siglip("longest")
    ours, oracle = SentenceTransformer(str(folder)), _oracle(folder, padding=None)
    assert oracle[0].processing_kwargs == {"text": {"padding": True}}
    texts = TEXTS + ["dog", "a cat is here", "x y z", "the photo of a dog"]
    np.testing.assert_allclose(ours.encode(texts, batch_size=batch_size),
                               oracle.encode(texts, batch_size=batch_size), atol=TOL, rtol=0)


def _copy_with(tmp_path: Path, fmt: str, file: str, change) -> Path:
    """A copy of the tiny SigLIP ``fmt`` with ``change(json)`` applied to ``file``."""
    import shutil

    shutil.copytree(factories.tiny_siglip(fmt), tmp_path, dirs_exist_ok=True)
    data = json.loads((tmp_path / file).read_text())
    change(data)
    (tmp_path / file).write_text(json.dumps(data))
    return tmp_path


def test_siglip_processing_kwargs_padding_side_and_max_length_are_applied(tmp_path):
    """Left padding (so the last position is the end token) and a max length of 12."""
    kwargs = {"common": {"return_tensors": "pt"}, "text": {"padding": "max_length", "padding_side": "left",
                                                           "max_length": 12}}
    folder = _copy_with(tmp_path, "current", "sentence_bert_config.json",
                        lambda config: config.update(processing_kwargs=kwargs))
    ours, oracle = SentenceTransformer(str(folder)), _oracle(folder, padding=None)
    assert oracle[0].preprocess(["a cat"])["input_ids"].shape == (1, 12)
    want = oracle.encode(TEXTS, batch_size=4)
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=4), want, atol=TOL, rtol=0)
    right = SentenceTransformer(str(factories.tiny_siglip("current"))).encode(TEXTS, batch_size=4)
    assert np.abs(right - want).max() > 0.1  # the side and length matter: the test can fail


@pytest.mark.parametrize("kwargs, words", [
    ({"text": {"padding": "sideways"}}, r"padding 'sideways'"),
    ({"text": {"pad_to_multiple_of": 8}}, r"\['pad_to_multiple_of'\] are not served"),
    ({"common": {"max_length": 8}}, r"processing_kwargs\.common \['max_length'\] are not served"),
    ({"image": {"size": {"height": 8, "width": 8}}}, r"processing_kwargs\.image is not served"),
    ({"text": {"max_length": "long"}}, r"max_length must be a positive integer"),
    ({"text": {"padding_side": "middle"}}, r"padding_side must be 'left' or 'right'"),
    ({"text": ["padding"]}, r"processing_kwargs\.text must be a JSON object"),
    (["text"], r"processing_kwargs must be a JSON object"),
])
def test_siglip_processing_kwargs_not_reproduced_are_refused(tmp_path, kwargs, words):
    folder = _copy_with(tmp_path, "current", "sentence_bert_config.json",
                        lambda config: config.update(processing_kwargs=kwargs))
    with pytest.raises(ModelFormatError, match=r"sentence_bert_config\.json.*" + words):
        SentenceTransformer(str(folder))


def test_siglip_max_seq_length_of_one_model_leaves_another_alone():
    folder = str(factories.tiny_siglip("plain"))
    a, b = SentenceTransformer(folder), SentenceTransformer(folder)
    before = b.encode(TEXTS[:4])
    a.max_seq_length = 8
    assert (a.max_seq_length, b.max_seq_length) == (8, 16)
    np.testing.assert_array_equal(b.encode(TEXTS[:4]), before)
    assert np.abs(a.encode(TEXTS[:4]) - before).max() > 0.01


def test_siglip_tokenizer_json_beside_spiece_model_is_not_used(tmp_path):
    """transformers reads SigLIP's spiece.model (SiglipTokenizer) even when a tokenizer.json lies beside it."""
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers

    shutil.copytree(factories.tiny_siglip("plain"), tmp_path, dirs_exist_ok=True)
    other = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    other.pre_tokenizer = pre_tokenizers.Whitespace()
    other.save(str(tmp_path / "tokenizer.json"))
    np.testing.assert_allclose(SentenceTransformer(str(tmp_path)).encode(TEXTS),
                               _oracle(tmp_path).encode(TEXTS), atol=TOL, rtol=0)


def test_siglip_mixed_list_in_input_order(pair):
    ours, _ = pair
    texts, images = ours.encode(TEXTS[:4]), ours.encode(IMAGES[:4])
    mixed = [IMAGES[0], TEXTS[0], TEXTS[1], IMAGES[1], IMAGES[2], TEXTS[2], TEXTS[3], IMAGES[3]]
    want = np.stack([images[0], texts[0], texts[1], images[1], images[2], texts[2], texts[3], images[3]])
    np.testing.assert_allclose(ours.encode(mixed, batch_size=3), want, atol=1e-6, rtol=0)


def test_siglip_torch_backend_matches_oracle():
    folder = factories.tiny_siglip("plain")
    ours, oracle = SentenceTransformer(str(folder), backend="torch"), _oracle(folder)
    assert ours.graph is None
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=16), oracle.encode(TEXTS, batch_size=16), atol=TOL,
                               rtol=0)
    np.testing.assert_allclose(ours.encode(IMAGES[:5]), oracle.encode(IMAGES[:5]), atol=TOL, rtol=0)


def test_siglip_tokenizer_without_attention_mask_feeds_none(tmp_path):
    """A tokenizer_config.json whose model_input_names leave out the attention mask: transformers' tokenizer gives
    none, so sentence-transformers runs the text tower unmasked over the padding; so do we."""
    _copy_with(tmp_path, "plain", "tokenizer_config.json", lambda config: config.update(model_input_names=["input_ids"]))
    oracle = _oracle(tmp_path)
    assert "attention_mask" not in oracle[0].preprocess(["a cat"])
    ours = SentenceTransformer(str(tmp_path))
    want = oracle.encode(TEXTS, batch_size=16)
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=16), want, atol=TOL, rtol=0)
    masked = SentenceTransformer(str(factories.tiny_siglip("plain"))).encode(TEXTS, batch_size=16)
    assert np.abs(masked - want).max() > 0.1  # the mask matters: the test can fail


def test_siglip2_is_refused_with_a_reason(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "siglip2"}))
    with pytest.raises(ModelFormatError, match="SigLIP 2"):
        SentenceTransformer(str(tmp_path))


def test_siglip_torch_free_process_gives_the_same_vectors(pair, tmp_path):
    """Once the graphs are cached, a fresh process that cannot import torch, transformers or sentencepiece encodes
    both modalities (the converted tokenizer is in the cache)."""
    ours, _ = pair
    IMAGES[2].save(tmp_path / "x.png")
    want = ours.encode([tmp_path / "x.png", "a photo of a cat", "A Photo, of a CAT!"])
    code = """
import json, sys
for name in ("torch", "transformers", "sentencepiece"):
    sys.modules[name] = None  # importing any of them now fails
from st_plugins import SentenceTransformer
m = SentenceTransformer(sys.argv[1])
print(json.dumps(m.encode([sys.argv[2], "a photo of a cat", "A Photo, of a CAT!"]).tolist()))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, ours.model_name_or_path, str(tmp_path / "x.png")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "building the" not in done.stderr
    got = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    np.testing.assert_allclose(got[1], got[2], atol=1e-6, rtol=0)  # SigLIP drops case and punctuation
