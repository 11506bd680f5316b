"""ImageEmbeddingTransformer on a tiny random CLIP: the text transformer's conformance checks, the oracle, pipelines.

scikit-learn's common checks feed numeric matrices; the ones that cannot apply to a column of images fail for the
same reasons as for the text transformer, so ``EXPECTED_FAILED`` holds the same checks (strict xfail: one that
starts passing fails the test, and so does a set that drifts from the text transformer's), and each rule they
would have covered is tested here with images instead (``test_..._image_api_rules``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
st = pytest.importorskip("sentence_transformers")
Image = pytest.importorskip("PIL.Image")

from sklearn.base import clone  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from st_plugins.errors import InputTypeError, InputValueError  # noqa: E402
from st_plugins.sklearn import EmbeddingTransformer, ImageEmbeddingTransformer  # noqa: E402
from tests import factories  # noqa: E402
from tests.conftest import registered  # noqa: E402
from tests.image_files import COLOURS, colour_image, write_images  # noqa: E402
from tests.sklearn.test_transformer import EXPECTED_FAILED as TEXT_EXPECTED_FAILED  # noqa: E402

TINY = "st-plugins-test/sklearn-tiny-clip"
TOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _tiny_registered():
    """``TINY`` names the shared tiny CLIP while this module runs (the estimator checks clone by name)."""
    with registered({TINY: lambda: factories.tiny_clip("current")}):
        yield


_NUMERIC = "feeds a numeric matrix; X must be one column of images (rule tested with images here)"
EXPECTED_FAILED = {name: _NUMERIC for name in TEXT_EXPECTED_FAILED} | {
    "check_positive_only_tag_during_fit": "passes negative numbers as X; numbers are not images",
    "check_estimators_dtypes": "fits float32/int matrices; a row of numbers is not an image",
    "check_complex_data": "expects a 'complex' ValueError; complex numbers are rejected as non-images (TypeError)",
    "check_estimators_nan_inf": "expects a NaN/inf ValueError; floats are rejected as non-images (TypeError)",
    "check_fit2d_1sample": "expects fitting one sample to fail; one image is a valid input",
    "check_fit1d": "expects 1-D X to be rejected; a 1-D list of images or paths is the main input",
    "check_array_api_input": "array API namespaces hold numbers, not images",
}


@parametrize_with_checks([ImageEmbeddingTransformer(model=TINY, device="cpu")],
                         expected_failed_checks=lambda est: EXPECTED_FAILED, xfail_strict=True)
def test_sklearn_image_transformer_estimator_checks(estimator, check):
    check(estimator)


def test_sklearn_image_transformer_fails_the_same_checks_as_the_text_one():
    assert set(EXPECTED_FAILED) == set(TEXT_EXPECTED_FAILED)


@pytest.fixture(scope="module")
def oracle():
    return st.SentenceTransformer(str(factories.tiny_clip("current")), device="cpu")


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> list[Path]:
    return write_images(tmp_path_factory.mktemp("sk_images"))


@pytest.fixture(scope="module")
def fitted(paths) -> ImageEmbeddingTransformer:
    return ImageEmbeddingTransformer(model=TINY, device="cpu").fit(paths)


def test_sklearn_image_transformer_matches_oracle(fitted, oracle, paths):
    want = oracle.encode([str(p) for p in paths])  # sentence-transformers reads each path itself
    out = fitted.transform([str(p) for p in paths])
    assert out.dtype == np.float32 and out.shape == (len(paths), 24)
    np.testing.assert_allclose(out, want, atol=TOL, rtol=0)
    rgb = [Image.open(p).convert("RGB") for p in paths]
    np.testing.assert_allclose(fitted.transform(rgb), oracle.encode(rgb), atol=TOL, rtol=0)
    stack = np.stack([colour_image(c) for c in COLOURS.values()])  # (6, 40, 48, 3) uint8
    np.testing.assert_allclose(fitted.transform(stack), oracle.encode([Image.fromarray(a) for a in stack]),
                               atol=TOL, rtol=0)


@pytest.mark.parametrize("make_X", [
    lambda p: p, lambda p: [str(x) for x in p], lambda p: tuple(p), lambda p: np.array([str(x) for x in p]),
    lambda p: np.array(p, dtype=object), lambda p: pd.Series([str(x) for x in p]),
    lambda p: pd.DataFrame({"path": [str(x) for x in p]}), lambda p: np.array([str(x) for x in p], dtype=object)[:, None],
    lambda p: [[str(x)] for x in p], lambda p: [np.asarray(Image.open(x).convert("RGB")) for x in p],
], ids=["paths", "str", "tuple", "1d-unicode", "1d-object", "series", "dataframe", "2d-one-column", "list-of-rows",
        "arrays"])
def test_sklearn_image_transformer_input_shapes(fitted, paths, make_X):
    np.testing.assert_allclose(fitted.transform(make_X(paths)), fitted.transform(paths), atol=1e-6)


def test_sklearn_image_transformer_path_without_image_suffix_is_an_image(fitted, paths, tmp_path):
    """Every row is an image: a path whose name has no image suffix is read, not embedded as text."""
    odd = tmp_path / "picture"
    odd.write_bytes(paths[0].read_bytes())
    np.testing.assert_allclose(fitted.transform([str(odd)]), fitted.transform(paths[:1]), atol=1e-6)


def test_sklearn_image_transformer_parameters_change_output(fitted, paths):
    base = fitted.transform(paths)
    normed = ImageEmbeddingTransformer(model=TINY, device="cpu", normalize_embeddings=True).fit(paths).transform(paths)
    np.testing.assert_allclose(normed, base / np.linalg.norm(base, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    short = ImageEmbeddingTransformer(model=TINY, device="cpu", truncate_dim=8).fit(paths)
    np.testing.assert_allclose(short.transform(paths), base[:, :8], atol=1e-6)
    assert list(short.get_feature_names_out()) == [f"imageembeddingtransformer{i}" for i in range(8)]
    np.testing.assert_allclose(ImageEmbeddingTransformer(model=TINY, device="cpu", batch_size=1).fit(paths)
                               .transform(paths), base, atol=1e-5)


@pytest.mark.parametrize("X, error, match", [
    (["missing.png"], InputValueError, r"`X\[0\]` must be an image or the path of an image file; no file 'missing\.png'"),
    ([None], InputTypeError, r"`X\[0\]` must be an image .*got NoneType"),
    (pd.Series(["a.png", None]), InputValueError, r"`X\[0\]` must be an image or the path"),
    (np.zeros((3, 4)), InputValueError, "one column of images or image paths; got 4 columns"),
    ([np.zeros((8, 8, 3), np.float64)], InputTypeError, r"`inputs\[0\]` must be a uint8 array"),
    ([np.zeros((8, 8, 4), np.uint8)], InputValueError, r"4 channels: drop the alpha channel"),
    ("one.png", InputTypeError, "Wrap a single text in a list"),
    ([], InputValueError, "at least one image"),
], ids=["missing-file", "none", "series-missing", "numeric-matrix", "float-array", "rgba-array", "bare-str", "empty"])
def test_sklearn_image_transformer_rejects_bad_X(fitted, X, error, match):
    with pytest.raises(error, match=match):
        ImageEmbeddingTransformer(model=TINY, device="cpu").fit(X).transform(X)


def test_sklearn_image_transformer_refuses_a_text_model(paths):
    with pytest.raises(InputValueError, match=r"`model` must be an image-text model .*has no image tower"):
        ImageEmbeddingTransformer(model=str(factories.tiny_bert()), device="cpu").fit(paths)
    with pytest.raises(NotFittedError):
        ImageEmbeddingTransformer(model=TINY).transform(paths)


def test_sklearn_image_transformer_params_and_clone():
    est = ImageEmbeddingTransformer(model=TINY, batch_size=4)
    assert est.get_params() == {"model": TINY, "batch_size": 4, "normalize_embeddings": False, "truncate_dim": None,
                                "device": None, "show_progress_bar": False}
    assert vars(est) == est.get_params()  # __init__ stores parameters and nothing else
    twin = clone(est.set_params(normalize_embeddings=True))
    assert twin is not est and twin.get_params() == est.get_params()


def test_sklearn_image_transformer_image_api_rules(paths):
    """The rules of the numeric checks listed above, with images: fit returns self, is idempotent and leaves
    parameters and __dict__ alone; rows are independent of order and of the batch around them; pickles are small."""
    est = ImageEmbeddingTransformer(model=TINY, device="cpu")
    params = est.get_params()
    assert est.fit(paths) is est and est.get_params() == params
    state, first = dict(vars(est)), est.transform(paths)
    assert vars(est).keys() == state.keys()
    np.testing.assert_array_equal(est.fit(paths[:2]).transform(paths), first)
    order = np.arange(len(paths))[::-1]
    np.testing.assert_allclose(est.transform([paths[i] for i in order]), first[order], atol=1e-5)
    np.testing.assert_allclose(est.transform(paths[2:5]), first[2:5], atol=1e-5)
    assert est.n_features_in_ == 1 and not hasattr(est, "feature_names_in_")
    blob = pickle.dumps(est)
    assert len(blob) < 20_000, f"pickle is {len(blob)} bytes; weights must not be inside"
    np.testing.assert_array_equal(pickle.loads(blob).transform(paths), first)


def test_sklearn_image_transformer_column_transformer_and_pandas_output(fitted, paths):
    df = pd.DataFrame({"path": [str(p) for p in paths], "n": np.arange(len(paths))})
    ct = ColumnTransformer([("img", ImageEmbeddingTransformer(model=TINY, device="cpu"), "path")], remainder="passthrough")
    out = ct.fit_transform(df)
    assert out.shape == (len(paths), 25) and ct.get_feature_names_out()[-1] == "remainder__n"
    np.testing.assert_allclose(out[:, :24], fitted.transform(paths), atol=1e-6)
    frame = clone(fitted).set_output(transform="pandas").fit(paths).transform(pd.Series([str(p) for p in paths]))
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(fitted.get_feature_names_out())


def _coloured(hue: str, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """``n`` images of a reddish (``hue="red"``) or bluish colour, jittered, with the three white shapes."""
    rng = np.random.default_rng(seed)
    base = np.array(COLOURS["red" if hue == "red" else "blue"])
    images = [colour_image(tuple(np.clip(base + rng.integers(-40, 41, 3), 0, 255)), shape=i % 3) for i in range(n)]
    return np.stack(images), [int(hue == "blue")] * n


def test_sklearn_image_transformer_pipeline_with_a_classifier():
    """LogisticRegression on the tiny CLIP's image vectors tells reddish from bluish images it has not seen."""
    (red, y_red), (blue, y_blue) = _coloured("red", 8, 0), _coloured("blue", 8, 1)
    (red_test, yr), (blue_test, yb) = _coloured("red", 5, 2), _coloured("blue", 5, 3)
    pipe = make_pipeline(ImageEmbeddingTransformer(model=TINY, device="cpu", normalize_embeddings=True),
                         LogisticRegression(C=10.0, max_iter=1000))
    pipe.fit(np.concatenate([red, blue]), y_red + y_blue)
    assert pipe.score(np.concatenate([red_test, blue_test]), yr + yb) == 1.0
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.predict_proba(red_test), pipe.predict_proba(red_test))


def test_sklearn_text_transformer_still_texts_only():
    """The refactor that shares fit with the image transformer leaves the text one's rules alone."""
    with pytest.raises(InputTypeError, match=r"`X\[0\]` must be a str; got Image"):
        EmbeddingTransformer(model=str(factories.tiny_bert()), device="cpu").fit([Image.new("RGB", (8, 8))])
