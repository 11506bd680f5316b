"""CrossEncoderScorer with the trained STS reranker ("st-plugins/stsb-reranker") on the STS benchmark.

Skips when the reranker has not been trained in this environment (``st-plugins train-reranker``
writes it to ``$ST_PLUGINS_HOME/stsb-reranker`` or the user cache) or the data is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
scipy_stats = pytest.importorskip("scipy.stats")
pytestmark = pytest.mark.slow

from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402

from st_plugins.core.cache import get_model  # noqa: E402
from st_plugins.sklearn import CrossEncoderScorer  # noqa: E402

RERANKER = "st-plugins/stsb-reranker"


@pytest.fixture(scope="module")
def reranker():
    from st_plugins.training import named as registry

    if registry.locate_stsb_reranker() is None:
        pytest.skip(f"the trained STS reranker is absent from {registry.stsb_reranker_dir()}; "
                    "run `st-plugins train-reranker` first (ST_PLUGINS_HOME chooses the folder)")
    return get_model("cross", RERANKER)


def test_sklearn_sts_spearman_equals_core(reranker, sts_test):
    pairs = [(p.sentence1, p.sentence2) for p in sts_test]
    gold = np.array([p.score for p in sts_test])
    scorer = CrossEncoderScorer().fit(pairs)  # the default model is the STS reranker
    rho = scorer.score(pairs, gold)
    core = scipy_stats.spearmanr(reranker.predict(pairs), gold).statistic
    print(f"\nSTS test Spearman, CrossEncoderScorer: {rho:.4f}; core CrossEncoder: {core:.4f}")
    assert rho == pytest.approx(core, abs=1e-12)
    assert rho > 0.6  # a trained reranker: ~0.72 after the one-epoch --quick recipe, more after the full one


def test_sklearn_sts_grid_search_threshold_on_binary_labels(reranker, sts_dev):
    sample = sts_dev[::5]  # ~300 pairs keep this quick
    pairs = [(p.sentence1, p.sentence2) for p in sample]
    y = np.array([p.score >= 4 for p in sample], dtype=int)
    grid = {"threshold": [0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9]}
    search = GridSearchCV(CrossEncoderScorer(model=RERANKER), grid, cv=KFold(3, shuffle=True, random_state=0))
    search.fit(pairs, y)
    majority = max(y.mean(), 1 - y.mean())
    print(f"\nSTS dev binary (score >= 4): best threshold {search.best_params_['threshold']}, "
          f"accuracy {search.best_score_:.4f} (majority class {majority:.4f})")
    assert search.best_score_ > majority
    assert search.best_estimator_.threshold_ == search.best_params_["threshold"]
