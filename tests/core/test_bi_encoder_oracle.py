"""Our SentenceTransformer against sentence-transformers on the same folders (max abs diff <= 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

from st_plugins import SentenceTransformer
from tests.conftest import SENTENCES

st = pytest.importorskip("sentence_transformers")
TOL = 1e-5


def _both(folder, **kwargs):
    return SentenceTransformer(str(folder), device="cpu", **kwargs), st.SentenceTransformer(str(folder), device="cpu", **kwargs)


@pytest.mark.parametrize("batch_size", [1, 7, 32, 128])
def test_bi_encoder_packaged_model_matches_oracle(model, oracle, sts_test, batch_size):
    texts = [p.sentence1 for p in sts_test[:150]] + SENTENCES
    ours = model.encode(texts, batch_size=batch_size)
    theirs = oracle.encode(texts, batch_size=batch_size)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (len(texts), 384)
    assert np.abs(ours - theirs).max() <= TOL


@pytest.mark.parametrize(
    "pooling",
    ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", ("cls", "mean", "max"), ("lasttoken", "weightedmean")],
)
def test_bi_encoder_pooling_modes_match_oracle(make_st_folder, pooling):
    ours, theirs = _both(make_st_folder(pooling=pooling))
    for bs in (1, 7, 32, 128):
        a, b = ours.encode(SENTENCES, batch_size=bs), theirs.encode(SENTENCES, batch_size=bs)
        assert a.shape == b.shape and np.abs(a - b).max() <= TOL, (pooling, bs)
    assert ours.get_embedding_dimension() == theirs.get_embedding_dimension()


@pytest.mark.parametrize("pooling", ["mean", "weightedmean", "cls", "max"])
def test_bi_encoder_include_prompt_false_matches_oracle(make_st_folder, pooling):
    folder = make_st_folder(pooling=pooling, include_prompt=False, prompts={"query": "query: ", "document": "passage: "})
    ours, theirs = _both(folder)
    for method in ("encode_query", "encode_document"):
        a, b = getattr(ours, method)(SENTENCES, batch_size=3), getattr(theirs, method)(SENTENCES, batch_size=3)
        assert np.abs(a - b).max() <= TOL, method


def test_bi_encoder_dense_and_normalize_match_oracle(make_st_folder):
    import torch

    folder = make_st_folder(pooling=("mean", "max"), dense=((24, torch.nn.Tanh()), (16, torch.nn.Identity())), normalize=True)
    ours, theirs = _both(folder)
    for bs in (1, 7, 32, 128):
        a, b = ours.encode(SENTENCES, batch_size=bs), theirs.encode(SENTENCES, batch_size=bs)
        assert a.shape == (len(SENTENCES), 16)
        assert np.abs(a - b).max() <= TOL
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)


def test_bi_encoder_prompts_and_settings_match_oracle(make_st_folder):
    folder = make_st_folder(prompts={"query": "query: ", "document": "doc: ", "classify": "Classify: "},
                            default_prompt_name="classify", similarity_fn_name="dot")
    ours, theirs = _both(folder)
    assert ours.prompts == theirs.prompts and ours.default_prompt_name == "classify"
    assert ours.similarity_fn_name == theirs.similarity_fn_name == "dot"
    for kwargs in ({}, {"prompt_name": "query"}, {"prompt": "custom: "}, {"normalize_embeddings": True},
                   {"truncate_dim": 8}, {"batch_size": 1}, {"batch_size": 7, "prompt_name": "document"}):
        a, b = ours.encode(SENTENCES, **kwargs), theirs.encode(SENTENCES, **kwargs)
        assert np.abs(a - b).max() <= TOL, kwargs
    a = ours.encode(SENTENCES)
    assert np.abs(ours.similarity(a, a).numpy() - theirs.similarity(a, a).numpy()).max() <= 1e-4


def test_bi_encoder_plain_transformers_folder_gets_mean_pooling(tiny_bert_dir):
    ours, theirs = _both(tiny_bert_dir)
    assert ours.spec.pooling.modes == ("mean",)
    assert ours.max_seq_length == theirs.max_seq_length
    assert np.abs(ours.encode(SENTENCES) - theirs.encode(SENTENCES)).max() <= TOL


def test_bi_encoder_token_embeddings_match_oracle(model, oracle):
    ours = model.encode(SENTENCES[:5], output_value="token_embeddings")
    theirs = oracle.encode(SENTENCES[:5], output_value="token_embeddings")
    assert [t.shape for t in ours] == [t.shape for t in theirs]
    assert max(float((a - b).abs().max()) for a, b in zip(ours, theirs)) <= TOL


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_bi_encoder_quantized_precisions_match_oracle(model, oracle, precision):
    texts = SENTENCES * 2
    a, b = model.encode(texts, precision=precision), oracle.encode(texts, precision=precision)
    assert a.dtype == b.dtype and a.shape == b.shape
    # The float vectors agree within 1e-5, but floor() at a bucket edge (or a sign at 0) can move
    # one entry by one step. int8/uint8: sentence-transformers' buckets split [min, max] of each
    # dimension over these embeddings into 255 steps, so an entry may differ only if its float value
    # lies within 3e-5 of an edge (1e-5 for the value, 2e-5 for the data-dependent edges).
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    if precision.endswith("int8"):
        x = oracle.encode(texts)
        lo, step = x.min(axis=0), (x.max(axis=0) - x.min(axis=0)) / 255
        pos = (x - lo) / step
        near_edge = np.abs(pos - np.round(pos)) * step <= 3e-5
        assert diff.max() <= 1 and not (diff.astype(bool) & ~near_edge).any()
    else:  # packed bits: a flip needs a value within 1e-5 of 0, rare
        assert (diff != 0).mean() <= 0.005


def test_bi_encoder_saved_folder_loads_in_oracle(make_st_folder, tmp_path):
    import torch

    ours = SentenceTransformer(str(make_st_folder(pooling=("cls", "mean"), dense=((20, torch.nn.Tanh()),), normalize=True,
                                                  prompts={"query": "q: "})), device="cpu")
    ours.save(tmp_path / "saved")
    assert ours.graph is not None  # saving reads the weights; it does not hand them out
    theirs = st.SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    reloaded = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert np.abs(ours.encode(SENTENCES) - theirs.encode(SENTENCES)).max() <= TOL
    assert np.array_equal(ours.encode(SENTENCES), reloaded.encode(SENTENCES))
    assert theirs.prompts["query"] == "q: " and theirs.max_seq_length == ours.max_seq_length


def test_bi_encoder_packaged_model_save_roundtrip(model, tmp_path):
    model.save(tmp_path / "minilm")
    theirs = st.SentenceTransformer(str(tmp_path / "minilm"), device="cpu")
    assert np.abs(model.encode(SENTENCES) - theirs.encode(SENTENCES)).max() <= TOL
