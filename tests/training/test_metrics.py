"""Our numpy metrics equal scipy's and scikit-learn's, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from st_plugins.training import metrics

scipy_stats = pytest.importorskip("scipy.stats")
sk_metrics = pytest.importorskip("sklearn.metrics")


def _data(seed: int, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 6, n).astype(float)  # many ties, as STS scores have
    predicted = np.round(rng.normal(size=n) + gold / 3, 1)  # ties in the predictions too
    return gold, predicted


@pytest.mark.parametrize("seed", range(5))
def test_metrics_correlations_match_scipy(seed):
    gold, predicted = _data(seed)
    assert metrics.pearson(gold, predicted) == pytest.approx(scipy_stats.pearsonr(gold, predicted)[0], abs=1e-12)
    assert metrics.spearman(gold, predicted) == pytest.approx(scipy_stats.spearmanr(gold, predicted)[0], abs=1e-12)
    np.testing.assert_array_equal(metrics.rankdata(predicted), scipy_stats.rankdata(predicted))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [3, 10])
def test_metrics_ranking_match_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    relevant = (rng.random(12) < 0.3).astype(int)
    relevant[rng.integers(12)] = 1
    scores = np.round(rng.random(12), 1)  # ties
    assert metrics.ndcg_at_k(relevant, scores, k) == pytest.approx(sk_metrics.ndcg_score([relevant], [scores], k=k), abs=1e-12)
    assert metrics.average_precision(relevant, scores) == pytest.approx(sk_metrics.average_precision_score(relevant, scores), abs=1e-12)


def test_metrics_mrr_counts_only_the_top_k():
    assert metrics.mrr_at_k([0, 0, 1], [0.9, 0.8, 0.7], k=3) == pytest.approx(1 / 3)
    assert metrics.mrr_at_k([0, 0, 1], [0.9, 0.8, 0.7], k=2) == 0.0
