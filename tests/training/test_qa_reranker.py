"""The reranker made by ``st-plugins train-reranker --task qa`` (the registered "st-plugins/qa-reranker").

CI trains the ``--quick`` version into its own ``ST_PLUGINS_HOME`` before the tests; elsewhere these
skip until it has been trained. The figures are asserted against the quick bar (the full recipe's
are in the README).
"""

from __future__ import annotations

import numpy as np
import pytest

from st_plugins.commands.train_reranker import QUICK_MIN_MAP
from st_plugins.training import qa
from st_plugins.training.named import QA_RERANKER, locate_qa_reranker, qa_reranker_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reranker():
    if locate_qa_reranker() is None:
        pytest.skip(f"trained QA reranker {QA_RERANKER!r} not found at {qa_reranker_dir()}; "
                    "run `st-plugins train-reranker --task qa` (or add `--quick`) first")
    from st_plugins.core.cache import get_model

    return get_model("cross", QA_RERANKER, device="cpu")


def test_qa_reranker_beats_the_bi_encoder_on_wikiqa_test(reranker, model, wikiqa_test):
    """Each answered test question's own candidates, ranked by the reranker and by the bi-encoder's cosine."""
    ours = qa.evaluate_ranking(lambda pairs: reranker.predict(pairs, batch_size=64), wikiqa_test)
    bi = qa.evaluate_ranking(qa.bi_encoder_scorer(model), wikiqa_test)
    print(f"\nWikiQA test ({int(ours['questions'])} questions): QA reranker {ours}, bi-encoder {bi}")
    assert ours["questions"] == bi["questions"] == 243
    assert bi["map"] == pytest.approx(0.7219, abs=5e-4)  # all-MiniLM-L6-v2, as sentence-transformers gives it
    assert ours["map"] >= QUICK_MIN_MAP


def test_qa_reranker_loads_in_sentence_transformers_with_the_same_scores(reranker, wikiqa_test):
    st = pytest.importorskip("sentence_transformers")
    oracle = st.CrossEncoder(str(locate_qa_reranker()), device="cpu")
    pairs = [(q.question, s) for q in wikiqa_test[:5] for s in q.sentences]
    np.testing.assert_allclose(reranker.predict(pairs), oracle.predict(pairs), atol=1e-5)
