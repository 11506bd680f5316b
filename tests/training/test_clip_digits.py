"""The digits recipe: its quick (CI) form meets its bar, loads in sentence-transformers with the same vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from st_plugins.training import clip_digits


@pytest.fixture(scope="session")
def quick_digits(tmp_path_factory):
    """The quick recipe, run once per session (about 15 s of training)."""
    pytest.importorskip("sklearn")
    return clip_digits.train_clip_digits(tmp_path_factory.mktemp("clip_digits") / "quick", quick=True,
                                         show_progress_bar=False)


def test_clip_digits_quick_meets_its_bar(quick_digits):
    assert quick_digits.accuracy >= clip_digits.QUICK_MIN_ACCURACY
    assert quick_digits.recall_at_10 >= 0.9
    assert quick_digits.train_examples == 1200 and quick_digits.steps >= 3 * 120
    confusion = np.array(quick_digits.confusion)
    assert confusion.sum() == 597 and np.trace(confusion) / 597 == pytest.approx(quick_digits.accuracy)
    saved = json.loads((quick_digits.path / "metrics.json").read_text())
    assert saved["accuracy"] == quick_digits.accuracy and saved["recall_at_10"] == quick_digits.recall_at_10
    assert f"{quick_digits.accuracy:.4f}" in (quick_digits.path / "README.md").read_text()


def test_clip_digits_folder_loads_in_sentence_transformers_with_the_same_vectors(quick_digits):
    st = pytest.importorskip("sentence_transformers")
    oracle = st.SentenceTransformer(str(quick_digits.path), device="cpu")
    assert type(oracle[0]).__name__ == "Transformer" and len(oracle) == 1
    images = clip_digits.digits_split()["test"][0][:20]
    for batch_size in (1, 16):
        np.testing.assert_allclose(oracle.encode(images, batch_size=batch_size), quick_digits.model.encode(images),
                                   rtol=0, atol=1e-5)
    texts = clip_digits.captions()
    np.testing.assert_allclose(oracle.encode(texts), quick_digits.model.encode(texts), rtol=0, atol=1e-5)
    # sentence-transformers' own vectors give the same figures
    scores = clip_digits.evaluate(oracle, *clip_digits.digits_split()["test"])
    assert scores["accuracy"] == pytest.approx(quick_digits.accuracy, abs=2 / 597)


def test_clip_digits_preprocessing_is_the_folders_image_processor(quick_digits):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(quick_digits.path)).image_processor
    pixels = processor(clip_digits.digits_images(np.full((1, 8, 8), 16.0)), return_tensors="np")["pixel_values"]
    assert pixels.shape == (1, 3, clip_digits.IMAGE_SIZE, clip_digits.IMAGE_SIZE)
    np.testing.assert_allclose(pixels, 1.0, atol=1e-6)  # white, rescaled to 1, normalised with mean 0.5, std 0.5


def test_clip_digits_split_is_fixed_and_images_map_values_exactly():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    first, second = clip_digits.digits_split(), clip_digits.digits_split()
    assert [len(first[s][0]) for s in ("train", "test")] == [1200, 597]
    assert all(np.array_equal(first[s][1], second[s][1]) for s in first)
    assert sorted(np.bincount(first["test"][1])) == sorted(np.bincount(load_digits().target) - np.bincount(first["train"][1]))
    image = clip_digits.digits_images(np.arange(64, dtype=float).reshape(1, 8, 8) % 17)[0]
    red = np.asarray(image)[..., 0]
    assert image.mode == "RGB" and np.array_equal(red, np.asarray(image)[..., 2])
    np.testing.assert_array_equal(red.ravel(), np.rint((np.arange(64) % 17) * 255 / 16).astype(np.uint8))
    assert clip_digits.captions()[7] == "a handwritten digit seven" and len(set(clip_digits.captions())) == 10


def test_clip_digits_recall_at_10_and_accuracy_on_a_known_model():
    """evaluate() on a fake model whose vectors are known: every image nearest its digit's caption but two."""

    class Fake:
        def encode(self, inputs):
            out = []
            for x in inputs:
                digit = clip_digits.captions().index(x) if isinstance(x, str) else x
                out.append(np.eye(10)[digit])
            return np.array(out)

    labels = np.repeat(np.arange(10), 12)
    images = list(labels)
    images[0], images[1] = 5, 5  # two zeros look like fives
    scores = clip_digits.evaluate(Fake(), images, labels)
    assert scores["accuracy"] == pytest.approx(118 / 120)
    assert scores["confusion"][0][5] == 2 and scores["confusion"][5][5] == 12
    # "five"'s 10 nearest images: ties broken by index, the two fake fives (indices 0, 1) come first -> 8/10 right
    assert scores["recall@10"] == pytest.approx((9 + 0.8) / 10)
