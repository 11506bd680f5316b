"""Fuzzed inputs for the LangChain adapters: ``LangChainEmbeddings`` and ``CrossEncoderReranker``.

Property: valid texts give sentence-transformers' vectors (document / query prompts), valid documents come
back ordered by its cross-encoder scores; a bad call argument raises a typed ``StPluginsError`` naming it.
Bad *fields* raise ``pydantic.ValidationError`` (a ``ValueError`` naming the field and the input), as every
LangChain component does: that is the documented contract of these pydantic models, kept on purpose.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.reliability.strategies import (
    TOL, assert_names, budget, int_options, is_valid_text, lists_with_one_bad_item, oracle_pair, outcome, real_options,
    surrogate_texts, text_lists, valid_texts,
)

pytest.importorskip("langchain_core")
from langchain_core.documents import Document  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from st_plugins.langchain import CrossEncoderReranker, LangChainEmbeddings  # noqa: E402


@pytest.fixture(scope="module")
def embeddings(tiny_bi):
    return LangChainEmbeddings(model=tiny_bi[0].model_name_or_path, device="cpu")


@pytest.fixture(scope="module")
def cross_folder(tiny_cross):
    return tiny_cross[0].model_name_or_path


@budget(1.0)
@given(texts=text_lists, query=valid_texts, use_async=st.booleans())
def test_fuzz_embeddings_match_oracle(tiny_bi, embeddings, texts, query, use_async):
    """``embed_documents``: the oracle's ``encode_document`` rows as lists of floats; ``embed_query``: its
    ``encode_query`` vector; the async twins give the same."""
    if use_async:
        docs, q = asyncio.run(embeddings.aembed_documents(texts)), asyncio.run(embeddings.aembed_query(query))
    else:
        docs, q = embeddings.embed_documents(texts), embeddings.embed_query(query)
    assert isinstance(docs, list) and len(docs) == len(texts)
    assert all(isinstance(v, list) and len(v) == 32 for v in docs)
    if texts:
        np.testing.assert_allclose(docs, tiny_bi[1].encode_document(texts), **TOL)
    np.testing.assert_allclose(q, tiny_bi[1].encode_query(query), **TOL)


@budget(0.6)
@given(case=lists_with_one_bad_item(),
       query=st.one_of(surrogate_texts, st.none(), st.integers(), st.lists(valid_texts)))
@example(case=(["\ud800"], 0), query="\ud800")  # both were tokenizers' bare TypeError
def test_fuzz_embeddings_refuse_bad_texts(embeddings, case, query):
    """A bad ``texts[i]``: a typed error naming it; a ``text`` that is not one valid str: a typed error naming it."""
    items, index = case
    assert_names(outcome(lambda: embeddings.embed_documents(items))[1], f"`texts[{index}]`")
    assert_names(outcome(lambda: embeddings.embed_query(query))[1], "`text`")


FIELDS = {"batch_size": int_options, "normalize_embeddings": st.sampled_from([True, False, "x"]),
          "query_prompt_name": st.sampled_from([None, "query", "nope"]), "device": st.sampled_from(["cpu", "bogus"])}


@budget(0.6)
@given(fields=st.fixed_dictionaries({}, optional=FIELDS))
@example(fields={"device": "bogus"})  # was torch's bare RuntimeError
def test_fuzz_embeddings_fields(tiny_bi, fields):
    """Fields are checked at construction: an instance that embeds, or a ``ValidationError`` naming the field."""
    made, error = None, None
    try:
        made = LangChainEmbeddings(model=tiny_bi[0].model_name_or_path, **{"device": "cpu", **fields})
    except ValidationError as exc:
        error = exc
    if error is not None:
        assert any(name in str(error) for name in fields), str(error)
    else:
        assert len(made.embed_documents(["a", "b"])) == 2


def _docs(texts):
    return [Document(page_content=t, metadata={"i": i}) for i, t in enumerate(texts)]


@budget(1.0)
@given(query=valid_texts, texts=text_lists, top_n=st.one_of(st.none(), st.integers(1, 6)),
       threshold=st.one_of(st.none(), st.floats(0, 1)), as_runnable=st.booleans())
@example(query="word " * 20_000, texts=["漢" * 100_000, ""], top_n=1, threshold=None, as_runnable=False)
def test_fuzz_reranker_orders_by_oracle_scores(tiny_cross, cross_folder, query, texts, top_n, threshold, as_runnable):
    """The documents scoring at least ``score_threshold``, best first (the oracle's scores), at most ``top_n``,
    copies carrying ``relevance_score``; the inputs are not changed."""
    reranker = CrossEncoderReranker(model=cross_folder, device="cpu", top_n=top_n, score_threshold=threshold)
    docs = _docs(texts)
    if as_runnable:
        got = reranker.invoke({"query": query, "documents": docs})
    else:
        got = reranker.compress_documents(docs, query)
    scores = tiny_cross[1].predict([oracle_pair(query, t) for t in texts]) if texts else []
    cap = top_n or len(texts)
    above = [threshold is None or scores[i] >= threshold + sign * 1e-5 for i in range(len(texts)) for sign in (1, -1)]
    assert min(sum(above[0::2]), cap) <= len(got) <= min(sum(above[1::2]), cap)  # 1e-5 slack at the threshold
    relevance = [d.metadata["relevance_score"] for d in got]
    assert relevance == sorted(relevance, reverse=True)
    for d in got:
        np.testing.assert_allclose(d.metadata["relevance_score"], scores[d.metadata["i"]], **TOL)
        assert d.page_content == texts[d.metadata["i"]]
    assert all("relevance_score" not in d.metadata for d in docs)


@budget(0.6)
@given(query=st.one_of(valid_texts, surrogate_texts, st.none(), st.integers()),
       documents=st.one_of(st.just(_docs(["a", "b"])), st.sampled_from([None, 3, "abc", Document(page_content="x")]),
                           st.lists(st.one_of(st.just(Document(page_content="a")), st.text(max_size=2), st.none()),
                                    min_size=1, max_size=3)))
@example(query="q", documents=None)  # was a bare TypeError
@example(query="\ud800", documents=_docs(["a"]))  # was tokenizers' bare TypeError
def test_fuzz_reranker_refuses_bad_arguments(cross_folder, query, documents):
    """A bad ``query`` or ``documents`` (or ``documents[i]``): a typed error naming it."""
    reranker = CrossEncoderReranker(model=cross_folder, device="cpu")
    got, error = outcome(lambda: reranker.compress_documents(documents, query))
    query_ok = is_valid_text(query)
    docs_ok = isinstance(documents, list) and all(isinstance(d, Document) for d in documents)
    if query_ok and docs_ok:
        assert error is None and len(got) == min(3, len(documents))
    else:
        assert_names(error, "`query`", "`documents", "`text_pairs[")


@budget(0.6)
@given(top_n=st.one_of(st.none(), int_options), score_threshold=st.one_of(st.none(), real_options))
@example(top_n=3, score_threshold=float("nan"))  # NaN dropped every document
def test_fuzz_reranker_fields(cross_folder, top_n, score_threshold):
    """``top_n`` > 0 (or None) and a finite ``score_threshold`` (or None) work; others raise ``ValidationError``
    naming the field (pydantic's lax mode accepts numeric strings such as ``"3"``)."""
    try:
        reranker = CrossEncoderReranker(model=cross_folder, device="cpu", top_n=top_n, score_threshold=score_threshold)
    except ValidationError as exc:
        assert "top_n" in str(exc) or "score_threshold" in str(exc)
        return
    assert reranker.top_n is None or reranker.top_n > 0
    assert reranker.score_threshold is None or np.isfinite(reranker.score_threshold)
    assert isinstance(reranker.compress_documents(_docs(["a", "b"]), "q"), list)
