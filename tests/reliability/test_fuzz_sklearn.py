"""Fuzzed inputs for the scikit-learn adapters: ``EmbeddingTransformer`` and ``CrossEncoderScorer``.

Property: every accepted shape of ``X`` (a list, tuple, 1-D or one-column array, Series, one-column DataFrame;
for pairs an ``(n, 2)`` array, a list of pairs or a two-column DataFrame) gives sentence-transformers'
vectors / scores for the same texts; anything else, and any bad parameter, raises a typed ``StPluginsError``
naming ``X[i]`` or the parameter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.reliability.strategies import (
    TOL, assert_names, budget, int_options, is_finite_real, is_positive_int, lists_with_one_bad_item, oracle_pair,
    outcome, real_options, valid_texts,
)

pytest.importorskip("sklearn")
from st_plugins.sklearn import CrossEncoderScorer, EmbeddingTransformer  # noqa: E402

SHAPES = {
    "list": list, "tuple": tuple, "numpy 1-D": lambda xs: np.array(xs, dtype=object),
    "numpy column": lambda xs: np.array(xs, dtype=object).reshape(-1, 1),
    "Series": lambda xs: pd.Series(xs, dtype=object),
    "DataFrame": lambda xs: pd.DataFrame({"text": pd.Series(xs, dtype=object)}),
}
PAIR_SHAPES = {
    "list of tuples": list, "numpy (n, 2)": lambda ps: np.array(ps, dtype=object).reshape(-1, 2),
    "DataFrame": lambda ps: pd.DataFrame(list(ps), columns=["query", "document"], dtype=object),
}


@pytest.fixture(scope="module")
def bi_folder(tiny_bi):
    return tiny_bi[0].model_name_or_path


@pytest.fixture(scope="module")
def cross_folder(tiny_cross):
    return tiny_cross[0].model_name_or_path


@budget(1.0)
@given(texts=st.lists(valid_texts, min_size=1, max_size=5), shape=st.sampled_from(sorted(SHAPES)),
       prompt_name=st.sampled_from([None, "query"]), normalize=st.booleans())
def test_fuzz_transformer_matches_oracle(tiny_bi, bi_folder, texts, shape, prompt_name, normalize):
    """``fit_transform(X)``: the oracle's float32 vectors, one row per text, for every accepted shape of ``X``."""
    est = EmbeddingTransformer(bi_folder, device="cpu", prompt_name=prompt_name, normalize_embeddings=normalize)
    got = est.fit_transform(SHAPES[shape](texts))
    assert got.dtype == np.float32 and got.shape == (len(texts), 32)
    want = tiny_bi[1].encode(texts, prompt_name=prompt_name, normalize_embeddings=normalize)
    np.testing.assert_allclose(got, want, **TOL)


@budget(0.6)
@given(case=lists_with_one_bad_item(), fit=st.booleans())
@example(case=(["a", "\ud800"], 1), fit=False)  # was tokenizers' bare TypeError
def test_fuzz_transformer_bad_item_names_its_index(bi_folder, case, fit):
    """One bad row: a typed error naming ``X[i]`` (or ``X``, for rows of the wrong width), in ``fit`` and in
    ``transform``; a lone one-element row is a one-column table, and fine when it holds a text."""
    items, index = case
    est = EmbeddingTransformer(bi_folder, device="cpu")
    got, error = outcome(lambda: est.fit(items) if fit else est.fit(["ok"]).transform(items))
    if error is None:
        assert len(items) == 1 and len(items[0]) == 1 and isinstance(items[0][0], str), items
    else:
        assert_names(error, f"`X[{index}]", "`X`")


@pytest.mark.parametrize("X", [None, 5, "text", b"x", {"a": 1}, {"a", "b"}, (t for t in ["a"]), iter(["a"]),
                               np.zeros((1, 1, 1)), [["a", "b"]], pd.DataFrame({"a": ["x"], "b": ["y"]})], ids=repr)
def test_transformer_refuses_what_is_not_a_text_column(bi_folder, X):
    """Not texts in one column (``5`` was a bare ``TypeError``; a generator was read empty by ``transform`` after
    ``fit``, giving zero rows): a typed error naming ``X``."""
    _, error = outcome(lambda: EmbeddingTransformer(bi_folder, device="cpu").fit_transform(X))
    assert_names(error, "`X`")


PARAMS = {"batch_size": int_options, "truncate_dim": st.one_of(st.none(), int_options),
          "normalize_embeddings": st.sampled_from([True, False, np.bool_(True), "yes", 1]),
          "prompt_name": st.sampled_from([None, "query", "nope", 3]),
          "show_progress_bar": st.sampled_from([False, "x"]),
          "device": st.sampled_from(["cpu", "bogus", "cuda"])}
VALID = {"batch_size": is_positive_int, "truncate_dim": lambda v: v is None or (is_positive_int(v) and v <= 32),
         "normalize_embeddings": lambda v: isinstance(v, (bool, np.bool_)),
         "prompt_name": lambda v: v in (None, "query"),
         "show_progress_bar": lambda v: v is False, "device": lambda v: v == "cpu"}


@budget(1.0)
@given(params=st.fixed_dictionaries({}, optional=PARAMS))
@example(params={"batch_size": np.int64(2), "truncate_dim": np.int64(4)})  # numpy ints were refused
@example(params={"device": "bogus"})  # was torch's bare RuntimeError
def test_fuzz_transformer_params(tiny_bi, bi_folder, params):
    """Valid parameters: the oracle's vectors at ``transform``; an invalid one: a typed error at ``fit`` naming it."""
    est = EmbeddingTransformer(bi_folder, **{"device": "cpu", **params})
    bad = [f"`{n}`" for n, v in params.items() if not VALID[n](v)]
    got, error = outcome(lambda: est.fit_transform(["A man is eating pasta.", ""]))
    if bad:
        return assert_names(error, *bad)
    want = tiny_bi[1].encode(["A man is eating pasta.", ""], prompt_name=params.get("prompt_name"),
                             truncate_dim=params.get("truncate_dim"),
                             normalize_embeddings=bool(params.get("normalize_embeddings", False)))
    np.testing.assert_allclose(got, want, **TOL)


@budget(0.6)
@given(pairs=st.lists(st.tuples(valid_texts, valid_texts), min_size=1, max_size=4),
       shape=st.sampled_from(sorted(PAIR_SHAPES)))
@example(pairs=[("word " * 20_000, "漢" * 100_000)], shape="DataFrame")  # was a minute and 10 GB in tokenizers
def test_fuzz_scorer_matches_oracle(tiny_cross, cross_folder, pairs, shape):
    """``predict``: the oracle's scores; ``decision_function``: its logits; ``predict_proba`` rows sum to 1."""
    import torch

    est = CrossEncoderScorer(cross_folder, device="cpu", threshold=0.5).fit(PAIR_SHAPES[shape](pairs))
    X, short = PAIR_SHAPES[shape](pairs), [oracle_pair(*p) for p in pairs]
    np.testing.assert_allclose(est.predict(X), tiny_cross[1].predict(short), **TOL)
    logits = tiny_cross[1].predict(short, activation_fn=torch.nn.Identity())
    np.testing.assert_allclose(est.decision_function(X), logits, **TOL)
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0, atol=1e-6)


bad_rows = st.one_of(st.tuples(valid_texts), st.tuples(valid_texts, st.one_of(st.none(), st.integers(), st.floats())),
                     st.tuples(st.sampled_from(["\ud800", "a\udfff"]), valid_texts), st.none())


@budget(0.6)
@given(case=lists_with_one_bad_item(good=st.tuples(valid_texts, valid_texts), bad=bad_rows))
@example(case=([("q", "d"), ("\ud800", "d")], 1))  # was tokenizers' bare TypeError
def test_fuzz_scorer_bad_row_names_it(cross_folder, case):
    """One bad row (wrong length, a non-str or lone-surrogate side): a typed error naming ``X`` or ``X[i]``."""
    items, index = case
    est = CrossEncoderScorer(cross_folder, device="cpu", threshold=0.5).fit([("q", "d")])
    _, error = outcome(lambda: est.predict(items))
    assert_names(error, f"`X[{index}]", "`X`")


@budget(1.0)
@given(threshold=st.one_of(st.none(), real_options), batch_size=st.one_of(st.just(8), int_options),
       epochs=st.sampled_from([0, -1, "1", 1.5, None]), y=st.sampled_from([None, [1, 0], [0.2, 0.9], [1], ["x", "y"],
                                                                          [float("nan"), 1]]))
@example(threshold=True, batch_size=8, epochs=0, y=None)  # a bool was taken for the threshold 1.0
def test_fuzz_scorer_params(tiny_cross, cross_folder, threshold, batch_size, epochs, y):
    """Valid parameters and labels: ``threshold_`` as given (or learned from binary ``y``), the oracle's scores;
    otherwise a typed error naming the parameter or ``y``."""
    X = [("A man eats pasta.", "A man eats food."), ("A man eats pasta.", "A car drives.")]
    bad = [f"`{n}`" for n, ok in (("threshold", threshold is None or is_finite_real(threshold)),
                                  ("batch_size", is_positive_int(batch_size)), ("epochs", epochs == 0),
                                  ("y", y is None or (len(y) == 2 and all(is_finite_real(v) for v in y)))) if not ok]
    est, error = outcome(lambda: CrossEncoderScorer(cross_folder, device="cpu", threshold=threshold,
                                                    batch_size=batch_size, epochs=epochs).fit(X, y))
    if bad:
        return assert_names(error, *bad)
    assert error is None, error
    if threshold is not None:
        assert est.threshold_ == float(threshold)
    np.testing.assert_allclose(est.predict(X), tiny_cross[1].predict(X), **TOL)
    _, error = outcome(lambda: est.score(X, None))  # was nan: Spearman against no labels
    assert_names(error, "`y`")
