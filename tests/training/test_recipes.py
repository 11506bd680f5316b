"""The STS recipes run end to end on tiny models and a tiny STS folder (the real figures are in the README)."""

from __future__ import annotations

import numpy as np
import pytest

from st_plugins.data import StsPair
from st_plugins.training.recipes import finetune_bi_encoder_cosent, main, read_sts_folder, sts_examples, train_stsb_reranker

from .conftest import sentences


def test_recipes_sts_examples_scale_and_swap():
    examples = sts_examples([StsPair("a", "b", 5.0), StsPair("c", "d", 1.0)], both_orders=True)
    assert [(e.texts, e.label) for e in examples] == [(("a", "b"), 1.0), (("c", "d"), 0.2), (("b", "a"), 1.0), (("d", "c"), 0.2)]


def test_recipes_missing_split_names_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no sts-train.csv; pass the STS benchmark folder"):
        read_sts_folder(tmp_path)


def test_recipes_cosent_trains_saves_and_reports(tiny_sts_dir, tiny_bi_dir, tmp_path):
    from st_plugins.core.bi_encoder import SentenceTransformer

    result = finetune_bi_encoder_cosent(tiny_sts_dir, tmp_path / "bi", base_model=str(tiny_bi_dir), epochs=2,
                                        learning_rate=1e-3, show_progress_bar=False)
    assert result.path == tmp_path / "bi" and result.steps == 4
    assert all(-1 <= x <= 1 for x in (result.dev_spearman, result.test_spearman, result.baseline_test_spearman))
    assert result.wall_seconds > 0 and result.cpu_seconds > 0
    texts = sentences(4, 9)
    before = SentenceTransformer(str(tiny_bi_dir), device="cpu").encode(texts)
    after = SentenceTransformer(str(result.path), device="cpu").encode(texts)
    assert not np.allclose(before, after)


def test_recipes_reranker_trains_a_one_label_cross_encoder(tiny_sts_dir, tiny_bi_dir, tmp_path):
    from st_plugins.core.cross_encoder import CrossEncoder

    result = train_stsb_reranker(tiny_sts_dir, tmp_path / "rr", base_model=str(tiny_bi_dir), epochs=1,
                                 learning_rate=1e-3, max_length=48, show_progress_bar=False)
    assert result.steps == 4  # 64 pairs in both orders, batches of 32
    model = CrossEncoder(str(result.path), device="cpu")
    assert model.num_labels == 1 and model.max_length == 48
    scores = model.predict([("A man is eating pasta.", "A man is eating bread.")] * 2)
    assert scores.shape == (2,) and 0 < scores[0] < 1 and scores[0] == scores[1]


def test_recipes_module_main_prints_figures(tiny_sts_dir, tiny_bi_dir, tmp_path, capsys):
    assert main(["cosent", "--data", str(tiny_sts_dir), "--out", str(tmp_path / "m"), "--base-model", str(tiny_bi_dir),
                 "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert f"saved to {tmp_path / 'm'}" in out and "test Spearman" in out and "(before: " in out
