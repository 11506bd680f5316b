"""Image-text models (CLIP) against sentence-transformers on the same folder, in each layout it loads.

The folders are :func:`tests.factories.tiny_clip` (random weights, initializer factor 4 so the vectors are of
order 1-10 and a wrong mask, position, crop or normalization shows far above the tolerance). The oracle gets
one modality per call (sentence-transformers 6.2 refuses mixed batches); ours also gets mixed lists.
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
st = pytest.importorskip("sentence_transformers")
Image = pytest.importorskip("PIL.Image")

from st_plugins import SentenceTransformer, util  # noqa: E402
from st_plugins.core.multimodal import MultimodalSentenceTransformer, read_image_text_spec  # noqa: E402
from st_plugins.errors import InputTypeError, InputValueError, ModelFormatError  # noqa: E402
from tests import factories  # noqa: E402

TOL = 1e-5
ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a photo of a cat", "A dog is eating pasta in the park, number 12! " * 3, "", "Ünïcödé dog",
         "a photo of a dog"] * 4  # 20: more than a batch of 16; one over the 16-token limit


def _images(n: int = 20) -> list:
    """Random RGB images of many shapes (wider, taller, smaller than the 30 px crop), one grey, one RGBA."""
    rng = np.random.default_rng(5)
    shapes = [(40, 50), (30, 30), (64, 20), (100, 80), (12, 17), (31, 29), (33, 200)]
    out = [Image.fromarray(rng.integers(0, 256, (*shapes[i % len(shapes)], 3), dtype=np.uint8)) for i in range(n)]
    out[3] = out[3].convert("L")
    rgba = rng.integers(0, 256, (36, 44, 4), dtype=np.uint8)
    out[5] = Image.fromarray(rgba, "RGBA")
    return out


IMAGES = _images()


@pytest.fixture(scope="module", params=factories.CLIP_FORMATS)
def pair(request):
    """(ours, the oracle) on one layout of the same tiny CLIP."""
    folder = factories.tiny_clip(request.param)
    return SentenceTransformer(str(folder)), st.SentenceTransformer(str(folder), device="cpu")


@pytest.fixture(scope="module")
def clip_current():
    return SentenceTransformer(str(factories.tiny_clip("current")))


def test_multimodal_layouts_are_recognised():
    layouts = {fmt: read_image_text_spec(factories.tiny_clip(fmt)).layout for fmt in factories.CLIP_FORMATS}
    assert layouts == {"current": "current", "legacy": "legacy", "plain": "plain"}
    assert read_image_text_spec(factories.st_folder()) is None  # a text model


@pytest.mark.parametrize("batch_size", [1, 16])
def test_multimodal_vectors_match_oracle(pair, batch_size):
    ours, oracle = pair
    assert isinstance(ours, MultimodalSentenceTransformer) and ours.modalities == ("text", "image")
    assert ours.graph is not None  # served by the cached graphs
    np.testing.assert_allclose(ours.encode(IMAGES, batch_size=batch_size),
                               oracle.encode(IMAGES, batch_size=batch_size), atol=TOL, rtol=0)
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=batch_size),
                               oracle.encode(TEXTS, batch_size=batch_size), atol=TOL, rtol=0)
    assert ours.get_embedding_dimension() == oracle.get_embedding_dimension() == 24


def test_multimodal_dual_encoder_matches_oracle():
    """A VisionTextDualEncoderModel (BERT text tower with token types, ViT-style processor) as the digits model."""
    folder = factories.tiny_dual_encoder()
    ours, oracle = SentenceTransformer(str(folder)), st.SentenceTransformer(str(folder), device="cpu")
    assert ours.spec.model_type == "vision-text-dual-encoder"
    from st_plugins.core.images import load_image

    rgb = [load_image(image) for image in IMAGES]  # ViT's processor does not convert grey / RGBA itself; we do
    np.testing.assert_allclose(ours.encode(IMAGES), oracle.encode(rgb), atol=TOL, rtol=0)
    np.testing.assert_allclose(ours.encode(TEXTS), oracle.encode(TEXTS), atol=TOL, rtol=0)


def test_multimodal_mixed_list_in_input_order(clip_current):
    images = clip_current.encode(IMAGES[:6])
    texts = clip_current.encode(TEXTS[:6])
    mixed = [TEXTS[0], IMAGES[0], IMAGES[1], TEXTS[1], TEXTS[2], IMAGES[2], TEXTS[3], IMAGES[3], IMAGES[4],
             IMAGES[5], TEXTS[4], TEXTS[5]]
    want = np.stack([texts[0], images[0], images[1], texts[1], texts[2], images[2], texts[3], images[3], images[4],
                     images[5], texts[4], texts[5]])
    np.testing.assert_allclose(clip_current.encode(mixed, batch_size=3), want, atol=1e-6, rtol=0)
    np.testing.assert_allclose(clip_current.encode(IMAGES[0]), images[0], atol=1e-6, rtol=0)  # one item: 1-D


def test_multimodal_paths_and_arrays_equal_the_images(clip_current, tmp_path):
    rgb = np.asarray(IMAGES[0])
    png, jpg = tmp_path / "a.png", tmp_path / "b.JPG"
    IMAGES[0].save(png)
    IMAGES[1].save(jpg, quality=95)
    want = clip_current.encode([IMAGES[0], Image.open(jpg).convert("RGB"), IMAGES[3].convert("RGB")])
    got = clip_current.encode([png, str(jpg), rgb, np.asarray(IMAGES[3])])
    np.testing.assert_allclose(got[[0, 1, 3]], want, atol=1e-6, rtol=0)
    np.testing.assert_allclose(got[2], want[0], atol=1e-6, rtol=0)
    assert not np.allclose(clip_current.encode("missing.png"), got[0])  # not a file: a text, as in sentence-transformers


def test_multimodal_similarity_and_search_match_oracle(pair):
    ours, oracle = pair
    queries, corpus = TEXTS[:5], IMAGES[:12]
    q, c = ours.encode(queries), ours.encode(corpus)
    oq, oc = oracle.encode(queries), oracle.encode(corpus)
    np.testing.assert_allclose(np.asarray(ours.similarity(q, c)), oracle.similarity(oq, oc).numpy(), atol=1e-5)
    for query_vectors, oracle_query in ((q, oq), (c[:3], oc[:3])):  # text -> image, image -> image
        hits = util.semantic_search(query_vectors, c, top_k=4)
        want = st.util.semantic_search(oracle_query, oc, top_k=4)
        assert [[h["corpus_id"] for h in row] for row in hits] == [[h["corpus_id"] for h in row] for row in want]


def test_multimodal_image_processor_matches_transformers(tmp_path):
    """Our Pillow + numpy preprocessing equals transformers' image processors (its PIL backend here) to 1e-5."""
    from transformers import CLIPImageProcessor, SiglipImageProcessor, ViTImageProcessor

    from st_plugins.core.images import load_image
    from st_plugins.core.runtime.images import ImageProcessor, ImageSettings

    cases = [CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 30, "width": 30}),
             CLIPImageProcessor(size={"shortest_edge": 24}, crop_size={"height": 40, "width": 28}),  # crop pads
             SiglipImageProcessor(size={"height": 20, "width": 28}),
             ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.1, 0.2, 0.3], image_std=[0.9, 0.8, 0.7])]
    for n, hf in enumerate(cases):
        folder = tmp_path / str(n)
        hf.save_pretrained(folder)
        ours = ImageProcessor(ImageSettings.from_folder(folder))
        rgb = [load_image(image) for image in IMAGES]
        want = hf(images=rgb, return_tensors="np")["pixel_values"]
        np.testing.assert_allclose(ours(rgb), want, atol=1e-5, rtol=0, err_msg=type(hf).__name__)


@pytest.mark.parametrize("bad, error, words", [
    (Path("/nonexistent/cat.png"), InputValueError, r"`inputs\[1\]`: the image file .* does not exist"),
    (np.zeros((8, 8, 4), np.uint8), InputValueError, r"`inputs\[1\]` must be an image array .*4 channels"),
    (np.zeros((8, 8, 3), np.float32), InputTypeError, r"`inputs\[1\]` must be a uint8 array"),
    (np.zeros((0, 8, 3), np.uint8), InputValueError, r"`inputs\[1\]` must be an image array"),
    (None, InputTypeError, r"`inputs\[1\]` must be a text \(str\) or an image"),
    (b"bytes", InputTypeError, r"`inputs\[1\]` must be a text"),
    ("https://example.com/cat.png", InputValueError, r"`inputs\[1\]` is an URL"),
    ("\ud800", InputValueError, r"`inputs\[1\]` must be valid Unicode"),
])
def test_multimodal_bad_inputs_name_the_index(clip_current, bad, error, words):
    with pytest.raises(error, match=words):
        clip_current.encode(["a photo of a cat", bad, IMAGES[0]])


def test_multimodal_unreadable_image_file_names_the_index(clip_current, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    with pytest.raises(InputValueError, match=r"`inputs\[0\]`: .*broken\.png.* is not a readable image"):
        clip_current.encode([broken])


def test_multimodal_text_model_refuses_images_naming_the_index():
    model = SentenceTransformer(str(factories.st_folder()))
    assert model.modalities == ("text",)
    with pytest.raises((InputTypeError, InputValueError), match=r"inputs\[1\].*no image tower"):
        model.encode(["a text", IMAGES[0]])


def test_multimodal_torch_free_process_gives_the_same_vectors(clip_current, tmp_path):
    """Once the graphs are cached, a fresh process that cannot import torch or transformers encodes both."""
    IMAGES[2].save(tmp_path / "x.png")
    want = clip_current.encode([tmp_path / "x.png", "a photo of a cat"])
    code = f"""
import json, sys
sys.modules["torch"] = None; sys.modules["transformers"] = None  # importing either now fails
from st_plugins import SentenceTransformer
m = SentenceTransformer(sys.argv[1])
v = m.encode([sys.argv[2], "a photo of a cat"])
print(json.dumps({{"v": v.tolist(), "type": type(m).__name__}}))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, str(factories.tiny_clip("current")), str(tmp_path / "x.png")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "building the" not in done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["type"] == "MultimodalSentenceTransformer"
    np.testing.assert_allclose(np.array(out["v"]), want, atol=1e-6, rtol=0)
