"""The reranker made by ``st-plugins train-reranker`` (the registered "st-plugins/stsb-reranker").

CI trains the ``--quick`` version into its own ``ST_PLUGINS_HOME`` before the tests; elsewhere these
skip until a reranker has been trained. The figures are asserted against the quick bar (the full
recipe's are in the README and the closing note of issue 3).
"""

from __future__ import annotations

import numpy as np
import pytest

from st_plugins.commands.train_reranker import QUICK_MIN_SPEARMAN
from st_plugins.training.named import STSB_RERANKER, locate_stsb_reranker, stsb_reranker_dir
from tests.conftest import PASTA_CORPUS as CORPUS, PASTA_QUERY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reranker():
    if locate_stsb_reranker() is None:
        pytest.skip(f"trained STS reranker {STSB_RERANKER!r} not found at {stsb_reranker_dir()}; "
                    "run `st-plugins train-reranker` (or `--quick`) first")
    from st_plugins.core.cache import get_model

    return get_model("cross", STSB_RERANKER, device="cpu")


def test_stsb_reranker_ranks_the_quickstart_pasta_query(reranker):
    ranks = reranker.rank(PASTA_QUERY, CORPUS, return_documents=True)
    print("\n" + "\n".join(f"  {r['score']:.3f}  {r['text']}" for r in ranks))
    assert [r["text"] for r in ranks[:2]] == ["A man is eating food.", "A man is eating a piece of bread."]
    assert sorted(r["corpus_id"] for r in ranks) == list(range(len(CORPUS)))


def test_stsb_reranker_reaches_its_bar_on_sts_test(reranker, sts_test):
    from scipy.stats import spearmanr

    scores = reranker.predict([(p.sentence1, p.sentence2) for p in sts_test], batch_size=64)
    rho = spearmanr(scores, [p.score for p in sts_test]).statistic
    print(f"\nSTS test Spearman of {stsb_reranker_dir()}: {rho:.4f}")
    assert rho >= QUICK_MIN_SPEARMAN


def test_stsb_reranker_loads_in_sentence_transformers_with_the_same_scores(reranker):
    st = pytest.importorskip("sentence_transformers")
    oracle = st.CrossEncoder(str(locate_stsb_reranker()), device="cpu")
    pairs = [(PASTA_QUERY, doc) for doc in CORPUS]
    np.testing.assert_allclose(reranker.predict(pairs), oracle.predict(pairs), atol=1e-5)
