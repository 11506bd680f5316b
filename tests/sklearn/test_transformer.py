"""EmbeddingTransformer on a tiny random bi-encoder: sklearn API rules, input shapes, pickling, checks.

scikit-learn's common checks feed numeric matrices; the ones that cannot apply to a text column are
listed in ``EXPECTED_FAILED`` (strict xfail: if one starts passing, the test fails), and each rule
they would have covered is tested here with texts instead (``test_..._text_*``).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

from sklearn.base import clone  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from st_plugins.core.cache import get_model, load_counts  # noqa: E402
from st_plugins.errors import InputTypeError, InputValueError  # noqa: E402
from st_plugins.sklearn import EmbeddingTransformer  # noqa: E402
from tests import factories  # noqa: E402
from tests.conftest import registered  # noqa: E402

TINY = "st-plugins-test/sklearn-tiny-bi"


@pytest.fixture(scope="module", autouse=True)
def _tiny_registered():
    """``TINY`` names the shared tiny bi-encoder while this module runs (the estimator checks clone by name)."""
    with registered({TINY: factories.tiny_bert}):
        yield

TEXTS = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.", "",
         "A man is eating pasta.", "Ünïcödé 🙂 漢字.", "word " * 300, "Short."]

_NUMERIC = "feeds a numeric matrix; X must be one column of texts (rule tested with texts here)"
EXPECTED_FAILED = {
    "check_fit_score_takes_y": _NUMERIC,
    "check_estimators_overwrite_params": _NUMERIC,
    "check_dont_overwrite_parameters": _NUMERIC,
    "check_estimators_fit_returns_self": _NUMERIC,
    "check_readonly_memmap_input": "memory-maps numeric arrays; text cannot be memory-mapped",
    "check_n_features_in_after_fitting": _NUMERIC,
    "check_positive_only_tag_during_fit": "passes negative numbers as X; numbers are not texts",
    "check_estimators_dtypes": "fits float32/int arrays; there is no numeric dtype for texts",
    "check_complex_data": "expects a 'complex' ValueError; complex numbers are rejected as non-text (TypeError)",
    "check_dtype_object": "fits an object array of numbers in 10 columns; X must be one text column",
    "check_pipeline_consistency": _NUMERIC,
    "check_estimators_nan_inf": "expects a NaN/inf ValueError; floats are rejected as non-text (TypeError)",
    "check_estimators_pickle": _NUMERIC,
    "check_f_contiguous_array_estimator": _NUMERIC,
    "check_transformer_data_not_an_array": _NUMERIC,
    "check_transformer_general": _NUMERIC,
    "check_methods_sample_order_invariance": _NUMERIC,
    "check_methods_subset_invariance": _NUMERIC,
    "check_fit2d_1sample": "expects fitting one sample to fail; one text is a valid input",
    "check_fit2d_1feature": "fits a one-column numeric array; the column must hold texts",
    "check_dict_unchanged": _NUMERIC,
    "check_fit_idempotent": _NUMERIC,
    "check_fit_check_is_fitted": _NUMERIC,
    "check_n_features_in": _NUMERIC,
    "check_fit1d": "expects 1-D X to be rejected; a 1-D list of texts is the main input",
    "check_fit2d_predict1d": _NUMERIC,
    "check_array_api_input": "array API namespaces hold numbers, not texts",
}


@parametrize_with_checks([EmbeddingTransformer(model=TINY, device="cpu")],
                         expected_failed_checks=lambda est: EXPECTED_FAILED, xfail_strict=True)
def test_sklearn_transformer_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def fitted() -> EmbeddingTransformer:
    return EmbeddingTransformer(model=TINY, device="cpu").fit(TEXTS)


def test_sklearn_transformer_matches_core_encode(fitted):
    core = get_model("bi", TINY, device="cpu").encode(TEXTS)
    out = fitted.transform(TEXTS)
    assert out.dtype == np.float32 and out.shape == (len(TEXTS), 32)
    np.testing.assert_array_equal(out, core)


@pytest.mark.parametrize("make_X", [
    lambda t: t, lambda t: tuple(t), lambda t: np.array(t, dtype=object), lambda t: np.array(t),
    lambda t: pd.Series(t), lambda t: pd.DataFrame({"text": t}), lambda t: np.array(t, dtype=object)[:, None],
    lambda t: [[x] for x in t],
], ids=["list", "tuple", "1d-object", "1d-unicode", "series", "dataframe", "2d-one-column", "list-of-rows"])
def test_sklearn_transformer_input_shapes(fitted, make_X):
    np.testing.assert_array_equal(fitted.transform(make_X(TEXTS)), fitted.transform(TEXTS))


def test_sklearn_transformer_parameters_change_output(fitted):
    base = fitted.transform(TEXTS[:3])
    normed = EmbeddingTransformer(model=TINY, device="cpu", normalize_embeddings=True).fit(TEXTS).transform(TEXTS[:3])
    np.testing.assert_allclose(normed, base / np.linalg.norm(base, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    short = EmbeddingTransformer(model=TINY, device="cpu", truncate_dim=8).fit(TEXTS)
    np.testing.assert_array_equal(short.transform(TEXTS[:3]), base[:, :8])
    assert list(short.get_feature_names_out()) == [f"embeddingtransformer{i}" for i in range(8)]
    small_batches = EmbeddingTransformer(model=TINY, device="cpu", batch_size=1).fit(TEXTS)
    np.testing.assert_allclose(small_batches.transform(TEXTS), fitted.transform(TEXTS), atol=1e-5)


@pytest.mark.parametrize("X, error, match", [
    (["ok", 3], InputTypeError, r"`X\[1\]` must be a str; got int"),
    (pd.Series(["ok", None]), InputTypeError, r"`X\[1\]` must be a str; got (NoneType|float)"),
    (np.array([["a", "b"]], dtype=object), InputValueError, "one text column; got 2 columns"),
    ("one text", InputTypeError, r"Wrap a single text in a list"),
    (None, InputTypeError, "must be array-like"),
    ([], InputValueError, "at least one text"),
], ids=["int-item", "missing", "two-columns", "bare-str", "none", "empty"])
def test_sklearn_transformer_fit_rejects_bad_X(X, error, match):
    with pytest.raises(error, match=match):
        EmbeddingTransformer(model=TINY, device="cpu").fit(X)


@pytest.mark.parametrize("params, match", [
    ({"batch_size": 0}, "`batch_size` must be a positive int; got 0"),
    ({"truncate_dim": 64}, "`truncate_dim` must be at most the model's dimension 32; got 64"),
    ({"prompt_name": "passage"}, r"`prompt_name` must be one of the model's prompts \['document', 'query'\]; got 'passage'"),
    ({"normalize_embeddings": "yes"}, "`normalize_embeddings` must be True or False; got 'yes'"),
])
def test_sklearn_transformer_fit_rejects_bad_params(params, match):
    with pytest.raises(InputValueError, match=match):
        EmbeddingTransformer(model=TINY, device="cpu", **params).fit(TEXTS)


def test_sklearn_transformer_params_clone_and_unfitted():
    est = EmbeddingTransformer(model=TINY, batch_size=4)
    assert est.get_params() == {"model": TINY, "batch_size": 4, "normalize_embeddings": False, "prompt_name": None,
                                "truncate_dim": None, "device": None, "show_progress_bar": False}
    assert vars(est) == est.get_params()  # __init__ stores parameters and nothing else
    twin = clone(est.set_params(normalize_embeddings=True))
    assert twin is not est and twin.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        est.transform(TEXTS)
    with pytest.raises(NotFittedError):
        est.get_feature_names_out()
    tags = get_tags(est)
    assert tags.input_tags.string and tags.input_tags.two_d_array and not tags.target_tags.required


def test_sklearn_transformer_text_api_rules(fitted):
    """The rules of the numeric checks listed above, with texts: fit returns self, is idempotent and
    leaves parameters and __dict__ alone; rows are independent of order and of the batch around them."""
    est = EmbeddingTransformer(model=TINY, device="cpu")
    params = est.get_params()
    assert est.fit(TEXTS) is est and est.get_params() == params
    state = dict(vars(est))
    first = est.transform(TEXTS)
    assert vars(est).keys() == state.keys()
    np.testing.assert_array_equal(est.fit(TEXTS[:2]).transform(TEXTS), first)
    order = np.arange(len(TEXTS))[::-1]
    np.testing.assert_allclose(est.transform([TEXTS[i] for i in order]), first[order], atol=1e-5)
    np.testing.assert_allclose(est.transform(TEXTS[2:5]), first[2:5], atol=1e-5)
    np.testing.assert_array_equal(est.fit_transform(TEXTS), first)
    assert est.n_features_in_ == 1 and not hasattr(est, "feature_names_in_")
    est.fit(pd.DataFrame({"text": TEXTS}))
    assert list(est.feature_names_in_) == ["text"]


def test_sklearn_transformer_pandas_output_and_column_transformer(fitted):
    est = clone(fitted).set_output(transform="pandas").fit(TEXTS)
    index = pd.Index([f"doc{i}" for i in range(len(TEXTS))])
    frame = est.transform(pd.Series(TEXTS, index=index))
    assert isinstance(frame, pd.DataFrame) and frame.shape == (len(TEXTS), 32)
    assert list(frame.columns) == list(fitted.get_feature_names_out()) and frame.index.equals(index)
    df = pd.DataFrame({"title": TEXTS, "n": np.arange(len(TEXTS))})
    ct = ColumnTransformer([("emb", EmbeddingTransformer(model=TINY, device="cpu"), "title")], remainder="passthrough")
    out = ct.fit_transform(df)
    assert out.shape == (len(TEXTS), 33) and ct.get_feature_names_out()[-1] == "remainder__n"
    np.testing.assert_allclose(out[:, :32], fitted.transform(TEXTS), atol=1e-6)


def test_sklearn_transformer_pickle_is_small_and_identical(fitted):
    blob = pickle.dumps(fitted)
    assert len(blob) < 20_000, f"pickle is {len(blob)} bytes; weights must not be inside"
    np.testing.assert_array_equal(pickle.loads(blob).transform(TEXTS), fitted.transform(TEXTS))
    pipe = make_pipeline(EmbeddingTransformer(model=TINY, device="cpu"), LogisticRegression())
    pipe.fit(TEXTS, [0, 1] * 4)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(pipe)).predict_proba(TEXTS), pipe.predict_proba(TEXTS))


def test_sklearn_transformer_pickle_reloads_lazily_in_fresh_process(tmp_path):
    est = EmbeddingTransformer(model=str(factories.tiny_bert()), device="cpu").fit(TEXTS)
    (tmp_path / "est.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "expected.npy", est.transform(TEXTS))
    script = f"""
import pickle, numpy as np
from st_plugins.core.cache import load_counts
est = pickle.loads(open({str(tmp_path / 'est.pkl')!r}, 'rb').read())
assert load_counts() == {{}}, load_counts()   # unpickling loads nothing
out = est.transform({TEXTS!r})
assert list(load_counts().values()) == [1], load_counts()
np.testing.assert_array_equal(out, np.load({str(tmp_path / 'expected.npy')!r}))
print("ok")
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_sklearn_transformer_clones_share_one_load():
    from st_plugins.core.cache import cache_key

    key = cache_key("bi", factories.tiny_bert(), device="cpu")
    before = load_counts().get(key, 0)
    for normalize in (False, True, False):
        clone(EmbeddingTransformer(model=str(factories.tiny_bert()), device="cpu", normalize_embeddings=normalize)).fit(TEXTS)
    assert load_counts()[key] - before == (0 if before else 1)


def test_sklearn_transformer_missing_sklearn_names_the_extra(monkeypatch):
    import importlib

    from st_plugins.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were not installed
    for name in [m for m in sys.modules if m == "st_plugins.sklearn" or m.startswith("st_plugins.sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingDependencyError, match=r'pip install "st-plugins\[sklearn\]"'):
        importlib.import_module("st_plugins.sklearn")
