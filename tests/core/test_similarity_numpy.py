"""Without torch installed, ``similarity`` and ``util`` compute in numpy: the same values as the torch path.

The torch-free path is forced here by making ``torch_installed()`` answer False (tests/plain runs it for
real in a venv without torch); each function is compared with its torch result on the same inputs, which
tests/core/test_util.py compares with sentence-transformers.
"""

from __future__ import annotations

import numpy as np
import pytest

from st_plugins.core import search, similarity

RNG = np.random.default_rng(7)
A = RNG.normal(size=(7, 12)).astype(np.float32)
B = RNG.normal(size=(40, 12)).astype(np.float32)
CLUSTERS = (np.repeat(RNG.normal(size=(3, 12)), [6, 4, 2], axis=0) + RNG.normal(size=(12, 12)) * 0.02).astype(np.float32)
MATRIX = ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"]
PAIRWISE = ["pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim"]


@pytest.fixture
def no_torch(monkeypatch):
    from st_plugins.core import bi_encoder, cross_encoder

    for module in (similarity, bi_encoder, cross_encoder):  # each asks torch_installed() by its own name
        monkeypatch.setattr(module, "torch_installed", lambda: False)


def _torch_results():
    return ({f: getattr(similarity, f)(A, B).numpy() for f in MATRIX},
            {f: getattr(similarity, f)(A, B[:7]).numpy() for f in PAIRWISE},
            search.semantic_search(A, B, top_k=5, corpus_chunk_size=16),
            search.paraphrase_mining_embeddings(B, top_k=3, max_pairs=30),
            search.community_detection(CLUSTERS, threshold=0.9, min_community_size=2))


def test_numpy_path_equals_the_torch_path(monkeypatch):
    matrix, pairwise, hits, pairs, communities = _torch_results()
    monkeypatch.setattr(similarity, "torch_installed", lambda: False)
    for name in MATRIX:
        got = getattr(similarity, name)(A, B)
        assert isinstance(got, np.ndarray) and got.shape == (7, 40)
        np.testing.assert_allclose(got, matrix[name], atol=2e-5, rtol=1e-5)
    for name in PAIRWISE:
        np.testing.assert_allclose(getattr(similarity, name)(A, B[:7]), pairwise[name], atol=2e-5, rtol=1e-5)
    got_hits = search.semantic_search(A, B, top_k=5, corpus_chunk_size=16)
    assert [[h["corpus_id"] for h in q] for q in got_hits] == [[h["corpus_id"] for h in q] for q in hits]
    np.testing.assert_allclose([[h["score"] for h in q] for q in got_hits], [[h["score"] for h in q] for q in hits],
                               atol=1e-6)
    got_pairs = search.paraphrase_mining_embeddings(B, top_k=3, max_pairs=30)
    assert [p[1:] for p in got_pairs] == [p[1:] for p in pairs]
    assert search.community_detection(CLUSTERS, threshold=0.9, min_community_size=2) == communities
    assert [len(c) for c in communities] == [6, 4, 2]  # the three planted groups


def test_numpy_path_keeps_dtypes_and_errors(no_torch):
    assert similarity.to_tensor([1, 2, 3]).dtype == np.float32 and similarity.to_tensor([1, 2, 3]).shape == (1, 3)
    assert similarity.cos_sim(A.astype(np.float64), B).dtype == np.float64  # float64 against float32: float64
    with pytest.raises(similarity.InputTypeError, match="`a` must be embeddings"):
        similarity.cos_sim("text", B)
    with pytest.raises(similarity.InputTypeError, match="real numbers"):
        similarity.dot_score(A.astype(np.complex64), B)
    with pytest.raises(similarity.InputValueError, match="same dimension"):
        similarity.cos_sim(A, B[:, :5])
    with pytest.raises(similarity.InputValueError, match="1-D"):
        similarity.cos_sim(np.zeros((2, 2, 2)), B)


def test_topk_matches_a_full_sort():
    scores = RNG.normal(size=(5, 30))
    values, idx = similarity._topk(scores, 7)
    order = np.argsort(-scores, axis=1)[:, :7]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_array_equal(values, np.take_along_axis(scores, order, 1))
    assert similarity._topk(scores[0], 30)[1].tolist() == np.argsort(-scores[0]).tolist()


def test_encode_and_predict_return_numpy_for_tensors_without_torch(no_torch, tiny_bi_dir):
    from st_plugins import SentenceTransformer

    model = SentenceTransformer(str(tiny_bi_dir), device="cpu")
    arr = model.encode(["a b", "c"], convert_to_tensor=True)
    assert isinstance(arr, np.ndarray) and arr.shape[0] == 2
    rows = model.encode(["a b", "c"], convert_to_numpy=False)
    assert isinstance(rows, list) and all(isinstance(r, np.ndarray) for r in rows)
    np.testing.assert_array_equal(np.stack(rows), arr)
    assert isinstance(model.similarity(arr, arr), np.ndarray)
