"""Fuzzed inputs for ``CrossEncoder.predict`` and ``CrossEncoder.rank``.

Property: valid (query, document) pairs give sentence-transformers' scores for the same pairs (same tiny
folder, atol 1e-5), in input order, whatever container holds them, and ``rank`` orders them by those
scores; anything else raises a typed ``StPluginsError`` naming the parameter or the index at fault.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from tests.reliability.strategies import (
    CONTAINERS, TOL, assert_names, budget, containers, int_options, is_positive_int, is_valid_text,
    lists_with_one_bad_item, oracle_pair, outcome, surrogate_texts, survives_numpy, text_lists, valid_texts,
)

pairs = st.tuples(valid_texts, valid_texts)
PAIR_CONTAINERS = {
    "list of tuples": list, "list of lists": lambda ps: [list(p) for p in ps], "tuple": tuple,
    "generator": lambda ps: (p for p in ps), "numpy object": lambda ps: np.array(ps, dtype=object).reshape(len(ps), 2),
}
bad_pairs = st.one_of(
    st.tuples(valid_texts), st.tuples(valid_texts, valid_texts, valid_texts), st.none(), st.integers(), valid_texts,
    st.tuples(valid_texts, st.one_of(st.none(), st.integers(), st.binary(max_size=2))),
    st.tuples(surrogate_texts, valid_texts), st.tuples(valid_texts, surrogate_texts), st.just({"q": "d"}),
    st.just(frozenset({"a", "b"})),
)


@budget(1.0)
@given(items=st.lists(pairs, max_size=6), container=st.sampled_from(sorted(PAIR_CONTAINERS)),
       batch_size=st.integers(1, 8))
@example(items=[("", ""), ("\x00", "x" * 100_000), ("🙂 漢字", "word " * 20_000)], container="generator",
         batch_size=2)
@example(items=[("word " * 20_000, "漢" * 100_000)], container="list of tuples", batch_size=1)  # found: 60 s, 10 GB
def test_fuzz_predict_valid_pairs_match_oracle(tiny_cross, items, container, batch_size):
    """Any valid pairs, in any container: the oracle's scores, one per pair, in input order.

    Two texts far past the token limit cost the oracle minutes and gigabytes (see ``oracle_pair``).
    """
    ours, oracle = tiny_cross
    got = ours.predict(PAIR_CONTAINERS[container](items), batch_size=batch_size)
    assert got.dtype == np.float32 and got.shape == (len(items),)
    if items:
        np.testing.assert_allclose(got, oracle.predict([oracle_pair(*p) for p in items], batch_size=batch_size), **TOL)


@budget(0.5)
@given(pair=pairs, as_list=st.booleans())
def test_fuzz_predict_one_pair_is_one_score(tiny_cross, pair, as_list):
    """One pair (a tuple, or a list of two str) gives one scalar score, the oracle's."""
    ours, oracle = tiny_cross
    got = ours.predict(list(pair) if as_list else pair)
    assert np.ndim(got) == 0
    np.testing.assert_allclose(got, oracle.predict(oracle_pair(*pair)), **TOL)


@budget(1.0)
@given(case=lists_with_one_bad_item(good=pairs, bad=bad_pairs))
@example(case=([("ok", "ok"), ("\ud800", "d")], 1))  # found by this test: tokenizers' bare TypeError
def test_fuzz_predict_bad_pair_names_its_index(tiny_cross, case):
    """One wrong pair (wrong arity, not a pair, a non-str or lone-surrogate side) anywhere: a typed error naming
    ``inputs[i]`` (or ``inputs[i][j]``). sentence-transformers fails on lone surrogates with a bare ``TypeError``."""
    items, index = case
    _, error = outcome(lambda: tiny_cross[0].predict(items))
    assert_names(error, f"`inputs[{index}]")


@pytest.mark.parametrize("inputs", [None, 5, 2.5, "ab", b"ab", {"q": "d"}, {("q", "d")}, object(),
                                    pd.DataFrame({"q": ["a"], "d": ["b"]})], ids=repr)
def test_predict_refuses_what_is_not_pairs(tiny_cross, inputs):
    """Not a sequence of pairs (``5`` was a bare ``TypeError``; a DataFrame scored its column names): typed error."""
    _, error = outcome(lambda: tiny_cross[0].predict(inputs))
    assert_names(error, "`inputs`")


DEVICES = {"cpu": True, None: True, "cpu:0": True, torch.device("cpu"): True, "cuda": False, "bogus": False, 0: False}


@budget(1.0)
@given(batch_size=int_options, device=st.sampled_from(list(DEVICES)),
       activation=st.sampled_from([None, torch.nn.Identity(), 3]), to_tensor=st.booleans())
@example(batch_size=np.int64(2), device="cpu", activation=None, to_tensor=False)
@example(batch_size=1, device="bogus", activation=None, to_tensor=True)  # was torch's bare RuntimeError
def test_fuzz_predict_options(tiny_cross, batch_size, device, activation, to_tensor):
    """Valid options: the oracle's scores (as a tensor when asked); an invalid one: a typed error naming it."""
    ours, oracle = tiny_cross
    items = [("a query", "a document"), ("another", "")]
    bad = [n for n, ok in (("batch_size", is_positive_int(batch_size)), ("device", DEVICES[device]),
                           ("activation_fn", activation != 3)) if not ok]
    got, error = outcome(lambda: ours.predict(items, batch_size=batch_size, device=device, activation_fn=activation,
                                              convert_to_tensor=to_tensor))
    if bad:
        return assert_names(error, *(f"`{n}`" for n in bad))
    want = oracle.predict(items, activation_fn=activation, convert_to_tensor=to_tensor)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), **TOL)


@budget(0.6)
@given(query=valid_texts, docs=text_lists, container=containers, top_k=st.one_of(st.none(), st.integers(1, 8)),
       return_documents=st.booleans())
@example(query="", docs=["same", "same", "same"], container="list", top_k=2, return_documents=True)
def test_fuzz_rank_matches_oracle(tiny_cross, query, docs, container, top_k, return_documents):
    """``rank``: the oracle's score per ``corpus_id``, best first, ``top_k`` of them, texts when asked."""
    ours, oracle = tiny_cross
    if container == "numpy str" and not survives_numpy(docs):
        container = "list"
    hits = ours.rank(query, CONTAINERS[container](docs), top_k=top_k, return_documents=return_documents)
    assert len(hits) == min(len(docs), top_k or len(docs))
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    if docs:
        want = {i: float(s) for i, s in enumerate(oracle.predict([oracle_pair(query, d) for d in docs]))}
        np.testing.assert_allclose(scores, sorted(want.values(), reverse=True)[: len(hits)], **TOL)
        np.testing.assert_allclose(scores, [want[h["corpus_id"]] for h in hits], **TOL)
    if return_documents:
        assert all(h["text"] == docs[h["corpus_id"]] for h in hits)


@budget(1.0)
@given(query=st.one_of(valid_texts, surrogate_texts, st.none(), st.integers(), st.binary(max_size=2)),
       docs=st.one_of(lists_with_one_bad_item(), st.tuples(text_lists, st.none())),
       top_k=st.one_of(st.none(), int_options), batch_size=st.one_of(st.just(32), int_options))
@example(query="\udfff", docs=(["a"], None), top_k=None, batch_size=32)  # was tokenizers' bare TypeError
def test_fuzz_rank_refuses_bad_arguments(tiny_cross, query, docs, top_k, batch_size):
    """A bad ``query``, ``documents[i]``, ``top_k`` or ``batch_size``: a typed error naming one that is bad."""
    documents, bad_index = docs
    bad = [n for n, ok in (
        ("`query`", is_valid_text(query)),
        (f"`documents[{bad_index}]`", bad_index is None), ("`top_k`", top_k is None or is_positive_int(top_k)),
        ("`batch_size`", is_positive_int(batch_size))) if not ok]
    got, error = outcome(lambda: tiny_cross[0].rank(query, documents, top_k=top_k, batch_size=batch_size))
    if bad:
        assert_names(error, *bad)
    else:
        assert error is None and len(got) == min(len(documents), top_k or len(documents))
