"""ImageTextModel: image-text training with our losses on the tiny random CLIP, against sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st_plugins.errors import InputTypeError, InputValueError
from st_plugins.training import Example, MultipleNegativesRankingLoss, Trainer, TrainingArguments
from st_plugins.training.image_text import ImageTextModel, to_rgb_image
from tests import factories

CAPTIONS = ["a photo of a cat", "a photo of a dog", "a handwritten digit seven", "a man is eating pasta",
            "a woman is reading a book", "a dog is riding a horse", "a chef is cooking bread", "a child is playing guitar"]


def _images(n: int, seed: int) -> list[np.ndarray]:
    """Random 30x30 RGB uint8 arrays, each with its own mean brightness (so that they are tell-apart-able)."""
    rng = np.random.default_rng(seed)
    return [np.clip(rng.normal(30 * i, 20, size=(30, 30, 3)), 0, 255).astype(np.uint8) for i in range(n)]


@pytest.fixture(scope="module")
def st():
    return pytest.importorskip("sentence_transformers")


def _loss_value(loss, images, texts) -> float:
    loss.model.eval()
    with torch.no_grad():
        return loss([images, texts], torch.zeros(len(texts))).item()


def test_image_text_mnrl_equals_hand_computation_and_sentence_transformers(st):
    folder = factories.tiny_clip("plain")
    model = ImageTextModel.from_pretrained(folder).eval()
    images, texts = _images(3, 0), CAPTIONS[:3]
    ours = _loss_value(MultipleNegativesRankingLoss(model), images, texts)
    # By hand: cosine of each image with every caption, times 20; cross-entropy with its own caption as the target.
    a, b = model.encode(images).astype(np.float64), model.encode(texts).astype(np.float64)
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    scores = 20.0 * a @ b.T
    hand = np.mean(np.log(np.exp(scores).sum(axis=1)) - np.diag(scores))
    assert ours == pytest.approx(hand, abs=1e-5)
    assert hand > 0.01  # not a degenerate batch
    oracle_model = st.SentenceTransformer(str(folder), device="cpu").eval()
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss as OracleMNRL

    features = [oracle_model.preprocess([to_rgb_image(x) for x in images]), oracle_model.preprocess(texts)]
    with torch.no_grad():
        oracle = OracleMNRL(oracle_model)(features, torch.zeros(3)).item()
    assert ours == pytest.approx(oracle, abs=1e-5)


@pytest.mark.parametrize("fmt", factories.CLIP_FORMATS)
def test_image_text_trainer_fine_tunes_tiny_clip_and_saved_folder_loads_in_sentence_transformers(st, fmt, tmp_path):
    model = ImageTextModel.from_pretrained(factories.tiny_clip(fmt))
    images = _images(8, 1)
    examples = [Example((image, text)) for image, text in zip(images, CAPTIONS)]
    loss = MultipleNegativesRankingLoss(model)
    before = _loss_value(loss, images, CAPTIONS)
    args = TrainingArguments(epochs=6, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0, seed=3,
                             no_duplicates=True, show_progress_bar=False)
    result = Trainer(model, loss, examples, args).train(tmp_path / "out")
    assert result.steps == 6
    assert _loss_value(loss, images, CAPTIONS) < 0.8 * before
    oracle = st.SentenceTransformer(str(tmp_path / "out"), device="cpu")
    assert set(oracle.modalities) == {"text", "image"}
    for batch_size in (1, 16):
        pil = [to_rgb_image(x) for x in images]
        np.testing.assert_allclose(oracle.encode(pil, batch_size=batch_size), model.encode(images), rtol=0, atol=1e-5)
        np.testing.assert_allclose(oracle.encode(CAPTIONS, batch_size=batch_size), model.encode(CAPTIONS),
                                   rtol=0, atol=1e-5)


def test_image_text_trainer_fine_tunes_tiny_siglip_and_every_reader_pads_alike(st, tmp_path):
    """SigLIP: trained on texts padded to the maximum length; the saved folder's processing_kwargs make
    sentence-transformers (default settings) pad so too, and our runtime serves the same vectors."""
    pytest.importorskip("sentencepiece")
    from st_plugins import SentenceTransformer

    model = ImageTextModel.from_pretrained(factories.tiny_siglip("plain"))
    assert model.tokenize(CAPTIONS[:2])["input_ids"].shape == (2, 16)  # the maximum length, not the longest
    images = _images(8, 4)
    examples = [Example((image, text)) for image, text in zip(images, CAPTIONS)]
    loss = MultipleNegativesRankingLoss(model)
    before = _loss_value(loss, images, CAPTIONS)
    args = TrainingArguments(epochs=6, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0, seed=3,
                             show_progress_bar=False)
    Trainer(model, loss, examples, args).train(tmp_path / "out")
    assert _loss_value(loss, images, CAPTIONS) < 0.8 * before
    oracle = st.SentenceTransformer(str(tmp_path / "out"), device="cpu")
    ours = SentenceTransformer(str(tmp_path / "out"))
    want = model.encode(CAPTIONS)
    for batch_size in (1, 16):
        np.testing.assert_allclose(oracle.encode(CAPTIONS, batch_size=batch_size), want, rtol=0, atol=1e-5)
        np.testing.assert_allclose(ours.encode(CAPTIONS, batch_size=batch_size), want, rtol=0, atol=1e-5)
    pil = [to_rgb_image(x) for x in images]
    np.testing.assert_allclose(ours.encode(pil), oracle.encode(pil), rtol=0, atol=1e-5)


def test_image_text_frozen_text_tower_keeps_its_weights_and_cached_features_match(tmp_path):
    model = ImageTextModel.from_pretrained(factories.tiny_clip("plain"), freeze_text=True)
    tower = {k: v.clone() for k, v in model.model.text_model.state_dict().items()}
    images = _images(4, 2)
    examples = [Example((image, text)) for image, text in zip(images, CAPTIONS)]
    args = TrainingArguments(epochs=3, batch_size=4, learning_rate=1e-3, seed=0, show_progress_bar=False)
    Trainer(model, MultipleNegativesRankingLoss(model), examples, args).train()
    assert all(torch.equal(v, model.model.text_model.state_dict()[k]) for k, v in tower.items())
    assert model._text_cache  # the training steps went through the cache
    features = model.tokenize(CAPTIONS[:4])
    with torch.no_grad():
        model.train()
        cached = model(features)["sentence_embedding"]
        model.eval()
        fresh = model(features)["sentence_embedding"]
    torch.testing.assert_close(cached, fresh, rtol=0, atol=1e-5)


def test_image_text_tokenize_bad_columns_raise():
    model = ImageTextModel.from_pretrained(factories.tiny_clip("plain"))
    image = _images(1, 0)[0]
    with pytest.raises(InputValueError, match="item 0 is a text but item 1"):
        model.tokenize(["a cat", image])
    with pytest.raises(InputValueError, match="empty"):
        model.tokenize([])
    with pytest.raises(InputValueError, match=r"image 1 must be an HxW or HxWx3 array; got shape \(4, 4, 4\)"):
        model.tokenize([image, np.zeros((4, 4, 4), dtype=np.uint8)])
    with pytest.raises(InputTypeError, match="image 0 must be a uint8 array"):
        model.tokenize([np.zeros((4, 4, 3), dtype=np.float32)])
    with pytest.raises(InputTypeError, match="must have get_text_features"):
        ImageTextModel(torch.nn.Linear(2, 2), None)


def test_image_text_encode_mixed_list_keeps_input_order():
    model = ImageTextModel.from_pretrained(factories.tiny_clip("plain"))
    images = _images(2, 4)
    mixed = model.encode([CAPTIONS[0], images[0], CAPTIONS[1], images[1]])
    np.testing.assert_array_equal(mixed[[0, 2]], model.encode(CAPTIONS[:2]))
    np.testing.assert_array_equal(mixed[[1, 3]], model.encode(images))
