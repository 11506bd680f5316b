"""Our evaluators give sentence-transformers' figures for the same model folder and data."""

from __future__ import annotations

import pytest

from st_plugins.errors import InputValueError
from st_plugins.training import evaluators

from .conftest import sentences, sts_rows


@pytest.fixture(scope="module")
def sts_rows_small():
    return sts_rows(40, 5)


@pytest.mark.parametrize("kwargs", [{}, {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]},
                                    {"main_similarity": "dot", "name": "dev"}])
def test_evaluators_embedding_similarity_matches_oracle(tiny_bi_dir, st_modules, sts_rows_small, kwargs, tmp_path):
    import sentence_transformers as st

    from st_plugins.core.bi_encoder import SentenceTransformer

    s1, s2, gold = map(list, zip(*sts_rows_small))
    oracle_eval = st_modules["evaluation"].EmbeddingSimilarityEvaluator(s1, s2, gold, **kwargs)
    ours_eval = evaluators.EmbeddingSimilarityEvaluator(s1, s2, gold, **kwargs)
    expected = oracle_eval(st.SentenceTransformer(str(tiny_bi_dir), device="cpu"))
    got = ours_eval(SentenceTransformer(str(tiny_bi_dir), device="cpu"), output_path=str(tmp_path))
    assert got.keys() == expected.keys()
    assert got == pytest.approx(expected, abs=1e-5)
    assert ours_eval.primary_metric == oracle_eval.primary_metric
    assert (tmp_path / oracle_eval.csv_file).read_text().splitlines()[0] == ",".join(oracle_eval.csv_headers)


@pytest.fixture(scope="module")
def cross_pair(make_tiny_cross, st_modules):
    from st_plugins.core.cross_encoder import CrossEncoder

    folder = str(make_tiny_cross(1))
    return CrossEncoder(folder, device="cpu"), st_modules["cross"].CrossEncoder(folder, device="cpu")


def test_evaluators_cross_encoder_correlation_matches_oracle(cross_pair, st_modules, sts_rows_small):
    ours, oracle = cross_pair
    pairs, gold = [[a, b] for a, b, _ in sts_rows_small], [s for *_, s in sts_rows_small]
    expected = st_modules["cross_evaluation"].CrossEncoderCorrelationEvaluator(pairs, gold, name="sts")(oracle)
    got = evaluators.CrossEncoderCorrelationEvaluator(pairs, gold, name="sts")(ours)
    assert got.keys() == expected.keys()
    assert got == pytest.approx(expected, abs=1e-5)


def _reranking_samples() -> list[dict]:
    texts = sentences(60, 7)
    samples = []
    for i in range(6):
        docs = texts[i * 10: i * 10 + 10]
        samples.append({"query": texts[i], "positive": docs[i % 3: i % 3 + 1 + i % 2], "negative": docs[3:]})
    # retriever-style samples: one positive missing from the list, one query with no positive at all
    samples.append({"query": texts[0], "positive": [texts[1], "not retrieved"], "documents": texts[1:9]})
    samples.append({"query": texts[2], "positive": ["nowhere"], "documents": texts[10:15]})
    return samples


@pytest.mark.parametrize("at_k, rerank_positives, kinds", [(10, True, "negative"), (3, True, "all"), (10, False, "all")])
def test_evaluators_reranking_matches_oracle(cross_pair, st_modules, at_k, rerank_positives, kinds):
    ours, oracle = cross_pair
    samples = [s for s in _reranking_samples() if kinds == "all" or "negative" in s]
    kwargs = {"at_k": at_k, "always_rerank_positives": rerank_positives, "name": "toy"}
    expected = st_modules["cross_evaluation"].CrossEncoderRerankingEvaluator(samples, **kwargs)(oracle)
    got = evaluators.CrossEncoderRerankingEvaluator(samples, **kwargs)(ours)
    assert got.keys() == expected.keys()
    assert got == pytest.approx(expected, abs=1e-6)


def test_evaluators_bad_inputs_raise():
    with pytest.raises(InputValueError, match="same length"):
        evaluators.EmbeddingSimilarityEvaluator(["a"], ["b", "c"], [1.0, 2.0])
    with pytest.raises(InputValueError, match="`main_similarity` must be one of"):
        evaluators.EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], main_similarity="jaccard")
    with pytest.raises(InputValueError, match=r"`samples\[0\]` must have 'query'"):
        evaluators.CrossEncoderRerankingEvaluator([{"query": "q", "positive": "p"}])(model=None)
