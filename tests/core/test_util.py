"""st_plugins.util against sentence_transformers.util on the same embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st_plugins import util

st_util = pytest.importorskip("sentence_transformers.util")


@pytest.fixture(scope="module")
def emb():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 16, generator=g)
    points = centres.repeat_interleave(12, 0) + 0.3 * torch.randn(60, 16, generator=g)
    return points


@pytest.mark.parametrize("name", ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "pairwise_cos_sim",
                                  "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim"])
def test_util_similarity_functions_match_oracle(emb, name):
    a, b = emb[:20], emb[20:40]
    ours, theirs = getattr(util, name)(a, b), getattr(st_util, name)(a, b)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(getattr(util, name)(a.numpy(), b.numpy()), theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("top_k", [1, 5, 100])
def test_util_semantic_search_matches_oracle(emb, top_k):
    ours = util.semantic_search(emb[:7], emb, top_k=top_k, corpus_chunk_size=13, query_chunk_size=3)
    theirs = st_util.semantic_search(emb[:7], emb, top_k=top_k)
    assert [[h["corpus_id"] for h in q] for q in ours] == [[h["corpus_id"] for h in q] for q in theirs]
    assert np.allclose([[h["score"] for h in q] for q in ours], [[h["score"] for h in q] for q in theirs], atol=1e-5)


def test_util_paraphrase_mining_matches_oracle(emb):
    ours = util.paraphrase_mining_embeddings(emb, top_k=3, max_pairs=40)
    theirs = st_util.paraphrase_mining_embeddings(emb, top_k=3, max_pairs=40)
    assert [p[1:] for p in ours] == [p[1:] for p in theirs]


def test_util_paraphrase_mining_with_model(model, oracle):
    texts = ["A man eats pasta.", "A man is eating pasta.", "The cat sleeps.", "A kitten is sleeping.", "Stocks fell."]
    ours, theirs = util.paraphrase_mining(model, texts), st_util.paraphrase_mining(oracle, texts)
    assert [p[1:] for p in ours] == [p[1:] for p in theirs]


def test_util_community_detection_matches_oracle(emb):
    for threshold in (0.6, 0.8):
        assert util.community_detection(emb, threshold=threshold, min_community_size=5) == \
            st_util.community_detection(emb, threshold=threshold, min_community_size=5)
    assert util.community_detection([], min_community_size=2) == []


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
def test_util_quantize_embeddings_matches_oracle(emb, precision):
    ours, theirs = util.quantize_embeddings(emb, precision), st_util.quantize_embeddings(emb, precision)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    ranges = np.vstack([emb.numpy().min(0), emb.numpy().max(0)])
    assert np.array_equal(util.quantize_embeddings(emb[:1], precision, ranges=ranges),
                          st_util.quantize_embeddings(emb[:1], precision, ranges=ranges))


def test_util_similarity_function_names(model):
    from st_plugins import SimilarityFunction

    assert SimilarityFunction.possible_values() == ["cosine", "dot", "euclidean", "manhattan"]
    with pytest.raises(ValueError, match=r"`similarity_fn_name` must be one of"):
        SimilarityFunction.check("jaccard")


def test_util_mixed_float_dtypes_are_promoted(emb):
    queries, corpus = emb[:3].float(), emb.double().numpy()  # Chroma's get() returns float64
    hits = util.semantic_search(queries, corpus, top_k=1)
    assert [h[0]["corpus_id"] for h in hits] == [0, 1, 2]
    assert util.cos_sim(queries, corpus).dtype == torch.float64
