"""Fuzzed inputs for ``st_plugins.util``: similarity functions, ``semantic_search``, ``paraphrase_mining`` and
``community_detection``.

Property: on valid embeddings and options, the results of ``sentence_transformers.util`` (scores to 1e-5;
where exact ties allow several right answers, every returned hit carries its true score); otherwise a typed
``StPluginsError`` naming the argument at fault. Embeddings are small fixed-seed matrices with duplicate rows,
so ties are common.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from sentence_transformers import util as oracle_util

from st_plugins import util
from tests.reliability.strategies import (
    assert_names, bad_embeddings, budget, embedding_matrices, int_options, is_finite_real, is_positive_int, outcome,
    real_options, text_lists,
)

FUNCTIONS = ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"]
PAIRWISE = ["pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim"]
T = torch.from_numpy


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return oracle_util.cos_sim(T(a), T(b)).numpy()


def _distinct(scores: list[float]) -> bool:
    """No two scores within 1e-4: a unique right order."""
    s = sorted(scores)
    return all(b - a > 1e-4 for a, b in zip(s, s[1:]))


@budget(1.0)
@given(a=embedding_matrices(dim=6), b=embedding_matrices(dim=6), name=st.sampled_from(FUNCTIONS))
def test_fuzz_similarity_functions_match_oracle(a, b, name):
    """Each matrix function: the oracle's matrix, from numpy or torch input."""
    want = getattr(oracle_util, name)(T(a), T(b))
    for args in ((a, b), (T(a), T(b)), (a.tolist() or a, b)):
        torch.testing.assert_close(getattr(util, name)(*args), want, atol=1e-5, rtol=1e-4)


@budget(0.6)
@given(a=embedding_matrices(rows=(1, 6), dim=4), name=st.sampled_from(PAIRWISE), seed=st.integers(0, 9))
def test_fuzz_pairwise_functions_match_oracle(a, name, seed):
    """Each pairwise function on two matrices of one shape: the oracle's scores."""
    b = np.round(np.random.default_rng(seed).standard_normal(a.shape).astype(np.float32), 1)
    torch.testing.assert_close(getattr(util, name)(a, b), getattr(oracle_util, name)(T(a), T(b)), atol=1e-5, rtol=1e-4)


@budget(0.6)
@given(bad=bad_embeddings, name=st.sampled_from(FUNCTIONS + PAIRWISE), bad_first=st.booleans())
@example(bad=np.ones((2, 3), np.float32), name="pairwise_cos_sim", bad_first=False)  # was torch's RuntimeError
def test_fuzz_similarity_functions_refuse_non_embeddings(bad, name, bad_first):
    """Not embeddings (or another dimension): a typed error naming ``a`` or ``b`` (torch raised bare errors)."""
    good = np.ones((2, 2), np.float32)
    _, error = outcome(lambda: getattr(util, name)(*((bad, good) if bad_first else (good, bad))))
    assert_names(error, "`a`" if bad_first else "`b`")


@budget(1.5)
@given(queries=embedding_matrices(rows=(0, 5), dim=4), corpus=embedding_matrices(rows=(0, 12), dim=4),
       top_k=st.integers(1, 14), query_chunk_size=st.integers(1, 4), corpus_chunk_size=st.integers(1, 13))
def test_fuzz_semantic_search_matches_oracle(queries, corpus, top_k, query_chunk_size, corpus_chunk_size):
    """``top_k`` hits per query, best first, each with its true cosine score; the oracle's hits when scores are
    distinct, the oracle's scores always."""
    kwargs = {"top_k": top_k, "query_chunk_size": query_chunk_size, "corpus_chunk_size": corpus_chunk_size}
    got = util.semantic_search(queries, corpus, **kwargs)
    want = oracle_util.semantic_search(T(queries), T(corpus), **kwargs)
    assert len(got) == len(queries)
    if not len(corpus):
        assert got == want == [[] for _ in queries]
        return
    true = _cos(queries, corpus)
    for q, (ours, theirs) in enumerate(zip(got, want)):
        assert len(ours) == min(top_k, len(corpus))
        np.testing.assert_allclose([h["score"] for h in ours], [h["score"] for h in theirs], atol=1e-5)
        np.testing.assert_allclose([h["score"] for h in ours], [true[q, h["corpus_id"]] for h in ours], atol=1e-5)
        if _distinct(list(true[q])):
            assert [h["corpus_id"] for h in ours] == [h["corpus_id"] for h in theirs]


@budget(1.0)
@given(top_k=int_options, query_chunk_size=st.one_of(st.just(100), int_options),
       corpus_chunk_size=st.one_of(st.just(500000), int_options), bad=st.one_of(st.none(), bad_embeddings),
       bad_side=st.sampled_from(["query_embeddings", "corpus_embeddings"]))
@example(top_k=-1, query_chunk_size=100, corpus_chunk_size=500000, bad=None, bad_side="query_embeddings")
@example(top_k=3, query_chunk_size=0, corpus_chunk_size=500000, bad=None, bad_side="query_embeddings")
def test_fuzz_semantic_search_refuses_bad_arguments(top_k, query_chunk_size, corpus_chunk_size, bad, bad_side):
    """A bad option (``-1`` was torch's ``RuntimeError``, ``0`` a bare ``ValueError``, a negative chunk size an
    empty result) or non-embeddings: a typed error naming one at fault."""
    args = {"query_embeddings": np.ones((2, 3), np.float32), "corpus_embeddings": np.ones((4, 3), np.float32)}
    if bad is not None:
        args[bad_side] = bad
    options = {"top_k": top_k, "query_chunk_size": query_chunk_size, "corpus_chunk_size": corpus_chunk_size}
    wrong = [f"`{n}`" for n, v in options.items() if not is_positive_int(v)]
    wrong += [f"`{bad_side}`"] if bad is not None else []
    got, error = outcome(lambda: util.semantic_search(args["query_embeddings"], args["corpus_embeddings"], **options))
    if wrong:
        assert_names(error, *wrong)
    else:
        assert error is None and [len(hits) for hits in got] == [min(top_k, 4)] * 2


@budget(1.0)
@given(emb=embedding_matrices(rows=(0, 12), dim=4), top_k=st.integers(1, 12), max_pairs=st.integers(1, 70),
       query_chunk_size=st.integers(1, 12))
def test_fuzz_paraphrase_mining_embeddings_matches_oracle(emb, top_k, max_pairs, query_chunk_size):
    """Pairs ``[score, i, j]`` with ``i < j``, best first, each with its true score; the oracle's scores."""
    kwargs = {"top_k": top_k, "max_pairs": max_pairs, "query_chunk_size": query_chunk_size}
    got = util.paraphrase_mining_embeddings(emb, **kwargs)
    want = oracle_util.paraphrase_mining_embeddings(T(emb), **kwargs)
    np.testing.assert_allclose([p[0] for p in got], [p[0] for p in want], atol=1e-5)
    if got:
        true = _cos(emb, emb)
        assert all(i < j for _, i, j in got) and len({(i, j) for _, i, j in got}) == len(got)
        np.testing.assert_allclose([s for s, _, _ in got], [true[i, j] for _, i, j in got], atol=1e-5)


@budget(0.4)
@given(texts=text_lists, top_k=st.integers(1, 5), option=st.sampled_from(["top_k", "max_pairs", "query_chunk_size",
                                                                          "corpus_chunk_size", None]),
       value=int_options)
def test_fuzz_paraphrase_mining_with_a_model(tiny_bi, texts, top_k, option, value):
    """``paraphrase_mining(model, texts)``: the oracle's scores with the oracle's model; a bad option: a typed
    error naming it (``top_k="2"`` was a bare ``TypeError``, ``query_chunk_size=0`` a bare ``ValueError``)."""
    ours, oracle = tiny_bi
    kwargs = {"top_k": top_k, **({option: value} if option else {})}
    got, error = outcome(lambda: util.paraphrase_mining(ours, texts, **kwargs))
    if option and not is_positive_int(value):
        return assert_names(error, f"`{option}`")
    want = oracle_util.paraphrase_mining(oracle, texts, **kwargs) if len(texts) > 1 else []
    np.testing.assert_allclose([p[0] for p in got], [p[0] for p in want], atol=1e-5)


@budget(1.5)
@given(emb=embedding_matrices(rows=(0, 12), dim=3), threshold=st.sampled_from([-1.0, 0.0, 0.5, 0.8, 0.95, 1.0]),
       min_community_size=st.integers(1, 6), batch_size=st.integers(1, 13))
def test_fuzz_community_detection_matches_oracle(emb, threshold, min_community_size, batch_size):
    """The oracle's communities (as sets: members' order among exact ties may differ), largest first."""
    kwargs = {"threshold": threshold, "min_community_size": min_community_size, "batch_size": batch_size}
    got, want = util.community_detection(emb, **kwargs), oracle_util.community_detection(T(emb), **kwargs)
    assert [len(c) for c in got] == sorted((len(c) for c in got), reverse=True)
    assert sorted(map(sorted, got)) == sorted(map(sorted, want))
    assert all(len(c) >= min_community_size for c in got)


@budget(1.0)
@given(threshold=st.one_of(st.just(0.75), real_options), min_community_size=st.one_of(st.just(2), int_options),
       batch_size=st.one_of(st.just(1024), int_options), bad=st.one_of(st.none(), bad_embeddings))
@example(threshold=float("nan"), min_community_size=2, batch_size=1024, bad=None)  # silently found nothing
@example(threshold=0.5, min_community_size=0, batch_size=1024, bad=None)  # was torch's IndexError
def test_fuzz_community_detection_refuses_bad_arguments(threshold, min_community_size, batch_size, bad):
    """A bad ``threshold`` (NaN, a str, a bool), ``min_community_size``, ``batch_size`` or non-embeddings: a typed
    error naming one at fault."""
    options = {"threshold": threshold, "min_community_size": min_community_size, "batch_size": batch_size}
    wrong = [f"`{n}`" for n, v in options.items() if not (is_finite_real if n == "threshold" else is_positive_int)(v)]
    wrong += ["`embeddings`"] if bad is not None else []
    emb = np.ones((4, 3), np.float32) if bad is None else bad
    got, error = outcome(lambda: util.community_detection(emb, **options))
    if wrong:
        assert_names(error, *wrong)
    else:
        assert error is None and isinstance(got, list)
