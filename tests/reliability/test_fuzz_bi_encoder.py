"""Fuzzed inputs for ``SentenceTransformer.encode`` / ``encode_query`` / ``encode_document`` and ``similarity``.

Property: valid texts give the vectors sentence-transformers gives for the same texts (same tiny folder,
atol 1e-5), in input order and shape, whatever container holds them; anything else raises a typed
``StPluginsError`` naming the parameter or the index at fault.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from st_plugins.errors import InputTypeError, InputValueError
from tests.reliability.strategies import (
    CONTAINERS, TOL, assert_names, bad_embeddings, budget, containers, embedding_matrices, int_options, is_positive_int,
    lists_with_one_bad_item, outcome, survives_numpy, text_lists, valid_texts,
)

METHODS = ("encode", "encode_query", "encode_document")
methods = st.sampled_from(METHODS)
DIM = 32


@budget(1.0)
@given(texts=text_lists, container=containers, method=methods, batch_size=st.integers(1, 8), normalize=st.booleans())
@example(texts=[], container="list", method="encode", batch_size=1, normalize=False)
@example(texts=["", "\x00", "x" * 100_000, "👩‍👩‍👧‍👦 漢字"], container="generator", method="encode_query",
         batch_size=3, normalize=True)
def test_fuzz_encode_valid_texts_match_oracle(tiny_bi, texts, container, method, batch_size, normalize):
    """Any valid texts, in any container: the oracle's vectors, one row per text, in input order."""
    if container == "numpy str" and not survives_numpy(texts):
        container = "list"
    ours, oracle = tiny_bi
    got = getattr(ours, method)(CONTAINERS[container](texts), batch_size=batch_size, normalize_embeddings=normalize)
    assert got.dtype == np.float32 and got.shape == (len(texts), DIM)
    if texts:
        want = getattr(oracle, method)(texts, batch_size=batch_size, normalize_embeddings=normalize)
        np.testing.assert_allclose(got, want, **TOL)


@budget(0.6)
@given(text=valid_texts, method=methods)
def test_fuzz_encode_one_text_is_one_vector(tiny_bi, text, method):
    """One str gives one 1-D vector, the oracle's."""
    ours, oracle = tiny_bi
    got = getattr(ours, method)(text)
    assert got.shape == (DIM,)
    np.testing.assert_allclose(got, getattr(oracle, method)(text), **TOL)


@budget(1.0)
@given(case=lists_with_one_bad_item(), method=methods)
@example(case=(["ok", "a\ud800b"], 1), method="encode")  # found by this test: tokenizers' bare TypeError
@example(case=([b"bytes"], 0), method="encode_document")
def test_fuzz_encode_bad_item_names_its_index(tiny_bi, case, method):
    """One bad item (a non-str, or a str with a lone surrogate) anywhere: a typed error naming ``inputs[i]``.

    sentence-transformers itself fails on lone surrogates with tokenizers' bare ``TypeError``; we raise
    ``InputValueError`` naming the index instead (``InputTypeError`` for items that are not str at all).
    """
    items, index = case
    _, error = outcome(lambda: getattr(tiny_bi[0], method)(items))
    assert_names(error, f"`inputs[{index}]`")
    assert isinstance(error, InputValueError if isinstance(items[index], str) else InputTypeError)


@pytest.mark.parametrize("inputs", [None, 3, 2.5, b"bytes", bytearray(b"x"), {"a": 1}, {"a", "b"}, frozenset(),
                                    pd.DataFrame({"text": ["a"]}), object()], ids=repr)
def test_encode_refuses_what_is_not_texts(tiny_bi, inputs):
    """Not a str nor a sequence of str (a set has no order; a DataFrame iterates its column names): typed error."""
    for method in METHODS:
        _, error = outcome(lambda: getattr(tiny_bi[0], method)(inputs))
        assert_names(error, "`inputs`")


DEVICES = {"cpu": True, None: True, "": True, "cpu:0": True, torch.device("cpu"): True, "cuda": False, "CPU": False,
           "bogus": False, 3: False, b"cpu": False}
OPTION_VALUES = {
    "batch_size": int_options, "truncate_dim": st.one_of(st.none(), int_options),
    "precision": st.sampled_from(["float32", "int8", "uint8", "binary", "ubinary", "float16", "", None]),
    "output_value": st.sampled_from(["sentence_embedding", "token_embeddings", None, "tokens"]),
    "prompt_name": st.sampled_from([None, "query", "document", "nope", 3, ["query"]]),
    "device": st.sampled_from(list(DEVICES)),
}
VALID = {
    "batch_size": is_positive_int, "truncate_dim": lambda v: v is None or (is_positive_int(v) and v <= DIM),
    "precision": lambda v: v in ("float32", "int8", "uint8", "binary", "ubinary"),
    "output_value": lambda v: v in ("sentence_embedding", "token_embeddings", None),
    "prompt_name": lambda v: v in (None, "query", "document"), "device": lambda v: DEVICES[v],
}


@budget(1.5)
@given(options=st.fixed_dictionaries({}, optional=OPTION_VALUES), texts=st.lists(valid_texts, min_size=1, max_size=3))
@example(options={"batch_size": np.int64(2), "truncate_dim": np.int64(8)}, texts=["a", "b"])  # numpy ints were refused
@example(options={"device": "bogus"}, texts=["a"])  # was torch's bare RuntimeError
@example(options={"device": "cuda"}, texts=["a"])  # was torch's bare AssertionError on a CPU-only machine
def test_fuzz_encode_options(tiny_bi, options, texts):
    """Every option valid: the oracle's float32 vectors (sizes and shapes for the others); any one invalid: a typed
    error naming an invalid one."""
    ours, oracle = tiny_bi
    bad = [name for name, value in options.items() if not VALID[name](value)]
    got, error = outcome(lambda: ours.encode(texts, **options))
    if bad:
        assert_names(error, *(f"`{name}" for name in bad))
        return
    assert error is None, error
    if options.get("output_value", "sentence_embedding") != "sentence_embedding":
        assert len(got) == len(texts)
        return
    dim = options.get("truncate_dim") or DIM
    if options.get("precision", "float32") in ("binary", "ubinary"):
        dim = -(-dim // 8)
    assert got.shape == (len(texts), dim)
    if options.get("precision", "float32") == "float32":
        same = {k: v for k, v in options.items() if k in ("batch_size", "truncate_dim", "prompt_name")}
        np.testing.assert_allclose(got, oracle.encode(texts, **same), **TOL)


@budget(0.15)
@given(texts=st.lists(valid_texts, min_size=1, max_size=4), method=methods)
@pytest.mark.slow
def test_fuzz_real_model_matches_oracle(model, oracle, texts, method):
    """A few examples on the real all-MiniLM-L6-v2: the oracle's vectors."""
    np.testing.assert_allclose(getattr(model, method)(texts), getattr(oracle, method)(texts), **TOL)


@budget(1.0)
@given(a=embedding_matrices(dim=8), b=embedding_matrices(dim=8),
       fn=st.sampled_from(["cosine", "dot", "euclidean", "manhattan"]))
def test_fuzz_similarity_matches_oracle(tiny_bi, a, b, fn):
    """``similarity`` for each function: the oracle's matrix (empty sides included)."""
    ours, oracle = tiny_bi
    ours.similarity_fn_name, oracle.similarity_fn_name = fn, fn
    try:
        got, want = ours.similarity(a, b), oracle.similarity(torch.from_numpy(a), torch.from_numpy(b))
    finally:
        ours.similarity_fn_name = oracle.similarity_fn_name = "cosine"
    assert tuple(got.shape) == tuple(want.shape) == (len(a), len(b))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4, equal_nan=True)


@budget(0.5)
@given(bad=bad_embeddings, other=embedding_matrices(rows=(1, 3), dim=2), bad_first=st.booleans())
@example(bad=np.ones((3, 4), np.float32), other=np.ones((2, 2), np.float32), bad_first=True)  # was torch's RuntimeError
def test_fuzz_similarity_refuses_what_is_not_embeddings(tiny_bi, bad, other, bad_first):
    """Not embeddings, or of another dimension: a typed error naming the argument (util's names ``a`` / ``b``)."""
    args = (bad, other) if bad_first else (other, bad)
    _, error = outcome(lambda: tiny_bi[0].similarity(*args))
    assert_names(error, "`a`" if bad_first else "`b`")
