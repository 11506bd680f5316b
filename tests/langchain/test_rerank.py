"""LangChainCrossEncoder and CrossEncoderReranker on a tiny random cross-encoder (always runs)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

pytest.importorskip("langchain_core")
from langchain_classic.retrievers.document_compressors import CrossEncoderReranker as ClassicReranker  # noqa: E402
from langchain_core.cross_encoders import BaseCrossEncoder  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from st_plugins.core.cache import get_model  # noqa: E402
from st_plugins.errors import InputTypeError, InputValueError  # noqa: E402
from st_plugins.langchain import CrossEncoderReranker, LangChainCrossEncoder  # noqa: E402
from tests import factories  # noqa: E402
from tests.conftest import SENTENCES  # noqa: E402

QUERY = "A man is playing a guitar."
TEXTS = ["A man plays the guitar.", "A woman is slicing onions.", "A dog runs in the park.",
         "Someone is playing an instrument.", "", "The stock market fell sharply today.", "Ünïcödé 🙂 漢字"]


@pytest.fixture(scope="module")
def cross_folder():
    """A random BERT sequence classifier (hidden 32, one label) with MiniLM's tokenizer."""
    return factories.cross_folder("bert", 1, seed=1, initializer_range=0.02)


@pytest.fixture(scope="module")
def oracle_scores(cross_folder):
    """sentence-transformers' CrossEncoder on the same folder: the expected scores for QUERY x TEXTS."""
    st = pytest.importorskip("sentence_transformers")
    return st.CrossEncoder(str(cross_folder), device="cpu").predict([(QUERY, t) for t in TEXTS])


@pytest.fixture
def docs():
    return [Document(page_content=t, metadata={"i": i}, id=f"doc-{i}") for i, t in enumerate(TEXTS)]


class Fixed(BaseCrossEncoder):
    """Scores given up front, by document text (to test ordering rules exactly)."""

    def __init__(self, by_text: dict[str, float]):
        self.by_text, self.calls = by_text, 0

    def score(self, text_pairs):
        self.calls += 1
        return [self.by_text[d] for _, d in text_pairs]


def test_langchain_cross_encoder_scores_match_oracle(cross_folder, oracle_scores):
    ce = LangChainCrossEncoder(model=str(cross_folder), device="cpu", batch_size=3)
    got = ce.score([(QUERY, t) for t in TEXTS])
    assert isinstance(ce, BaseCrossEncoder)
    assert type(got) is list and all(type(s) is float for s in got)
    np.testing.assert_allclose(got, oracle_scores, atol=1e-5)
    assert got == [float(s) for s in ce.client.predict([(QUERY, t) for t in TEXTS])]  # the core's numbers, unchanged
    assert ce.score([]) == []


def test_langchain_cross_encoder_shares_the_cached_model(cross_folder):
    ce = LangChainCrossEncoder(model=cross_folder, device="cpu")
    assert ce.client is get_model("cross", str(cross_folder), device="cpu")
    wrapped = LangChainCrossEncoder(model=ce.client)
    assert wrapped.client is ce.client


def test_langchain_cross_encoder_multi_label_uses_label_1():
    folder = factories.cross_folder("bert", 3, seed=1, initializer_range=0.02)
    ce = LangChainCrossEncoder(model=str(folder), device="cpu")
    pairs = [(QUERY, t) for t in TEXTS[:3]]
    np.testing.assert_allclose(ce.score(pairs), ce.client.predict(pairs)[:, 1], atol=1e-6)


PAIRS = [(q, d) for q in SENTENCES[:4] for d in SENTENCES] + [("word " * 300, "word " * 300), ("", "x")]


def test_langchain_cross_encoder_score_follows_langchain_protocol(make_cross_folder):
    one = LangChainCrossEncoder(model=str(make_cross_folder("bert", 1)), device="cpu", batch_size=5)
    three = LangChainCrossEncoder(model=str(make_cross_folder("bert", 3)), device="cpu")
    scores = one.score(PAIRS[:4])
    assert isinstance(scores, list) and all(type(s) is float for s in scores)
    assert scores == pytest.approx(one.client.predict(PAIRS[:4]).tolist(), abs=1e-7)
    assert three.client.num_labels == 3
    assert three.score(PAIRS[:4]) == pytest.approx(three.client.predict(PAIRS[:4])[:, 1].tolist(), abs=1e-7)
    assert one.score(PAIRS) == pytest.approx(one.client.predict(PAIRS, batch_size=32).tolist(), abs=1e-6)  # batches agree
    assert one.score([]) == [] and three.score([]) == []


def test_langchain_cross_encoder_score_names_the_bad_pair(make_cross_folder):
    one = LangChainCrossEncoder(model=str(make_cross_folder("bert", 1)), device="cpu")
    with pytest.raises(InputTypeError, match=r"`text_pairs\[0\]`"):
        one.score(["not a pair", "x", "y"])
    with pytest.raises(InputTypeError, match=r"`text_pairs\[1\]\[0\]` must be a str"):
        one.score([("q", "d"), (3, "d")])


def test_langchain_cross_encoder_works_in_langchain_classic_reranker(cross_folder, docs, oracle_scores):
    classic = ClassicReranker(model=LangChainCrossEncoder(model=str(cross_folder), device="cpu"), top_n=3)
    ours = CrossEncoderReranker(model=str(cross_folder), device="cpu", top_n=3)
    want = [TEXTS[i] for i in np.argsort(-oracle_scores, kind="stable")[:3]]
    assert [d.page_content for d in classic.compress_documents(docs, QUERY)] == want
    assert [d.page_content for d in ours.compress_documents(docs, QUERY)] == want


def test_langchain_reranker_best_first_with_scores_as_copies(cross_folder, docs, oracle_scores):
    reranker = CrossEncoderReranker(model=str(cross_folder), device="cpu", top_n=None)
    before = [d.model_dump() for d in docs]
    out = reranker.compress_documents(docs, QUERY)
    order = np.argsort(-oracle_scores, kind="stable")
    assert [d.metadata["i"] for d in out] == order.tolist()
    np.testing.assert_allclose([d.metadata["relevance_score"] for d in out], oracle_scores[order], atol=1e-5)
    assert [d.id for d in out] == [f"doc-{i}" for i in order]
    assert [d.model_dump() for d in docs] == before  # inputs untouched
    assert all(o is not d and o.metadata is not d.metadata for o in out for d in docs)


def test_langchain_reranker_ties_keep_input_order_top_n_and_threshold(docs):
    scores = {t: s for t, s in zip(TEXTS, [0.5, 0.9, 0.5, 0.1, 0.9, 0.5, 0.2])}
    by_i = lambda out: [d.metadata["i"] for d in out]  # noqa: E731
    assert by_i(CrossEncoderReranker(model=Fixed(scores), top_n=None).compress_documents(docs, QUERY)) == [1, 4, 0, 2, 5, 6, 3]
    assert by_i(CrossEncoderReranker(model=Fixed(scores), top_n=4).compress_documents(docs, QUERY)) == [1, 4, 0, 2]
    assert by_i(CrossEncoderReranker(model=Fixed(scores)).compress_documents(docs, QUERY)) == [1, 4, 0]  # top_n=3
    kept = CrossEncoderReranker(model=Fixed(scores), top_n=None, score_threshold=0.5).compress_documents(docs, QUERY)
    assert by_i(kept) == [1, 4, 0, 2, 5]
    assert by_i(CrossEncoderReranker(model=Fixed(scores), top_n=2, score_threshold=0.95).compress_documents(docs, QUERY)) == []


def test_langchain_reranker_empty_documents_give_empty_result_without_scoring():
    scorer = Fixed({})
    reranker = CrossEncoderReranker(model=scorer)
    assert reranker.compress_documents([], QUERY) == []
    assert asyncio.run(reranker.acompress_documents([], QUERY)) == []
    assert reranker.invoke({"query": QUERY, "documents": []}) == []
    assert scorer.calls == 0


async def test_langchain_reranker_async_matches_sync_and_runs_off_the_loop(cross_folder, docs, monkeypatch):
    reranker = CrossEncoderReranker(model=str(cross_folder), device="cpu", top_n=None)
    want = reranker.compress_documents(docs, QUERY)
    model = reranker._scorer.client
    started, released, on_loop = threading.Event(), threading.Event(), []
    loop_thread, original = threading.get_ident(), model.predict

    def gated(*args, **kwargs):
        on_loop.append(threading.get_ident() == loop_thread)
        started.set()
        released.wait(timeout=10)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "predict", gated)
    task = asyncio.ensure_future(reranker.acompress_documents(docs, QUERY))
    while not started.is_set():
        await asyncio.sleep(0.01)
    released.set()
    assert await task == want
    assert on_loop == [False]
    monkeypatch.setattr(model, "predict", original)
    many = await asyncio.gather(*[reranker.ainvoke({"query": QUERY, "documents": docs}) for _ in range(8)])
    assert all(result == want for result in many)


def test_langchain_reranker_is_a_runnable_with_query_and_documents(cross_folder, docs):
    reranker = CrossEncoderReranker(model=str(cross_folder), device="cpu", top_n=2)
    want = reranker.compress_documents(docs, QUERY)
    assert reranker.invoke({"query": QUERY, "documents": docs}) == want
    assert reranker.batch([{"query": QUERY, "documents": docs}] * 2) == [want, want]
    with pytest.raises(InputValueError, match=r"must have keys 'query' and 'documents'; got \['docs', 'query'\]"):
        reranker.invoke({"query": QUERY, "docs": docs})
    with pytest.raises(InputTypeError, match=r"must be a dict \{'query', 'documents'\}; got list"):
        reranker.invoke(docs)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r, d: r.compress_documents(d, None), InputTypeError, r"`query` must be a str; got NoneType"),
        (lambda r, d: r.compress_documents(d[:2] + ["text"], QUERY), InputTypeError, r"`documents\[2\]` must be a langchain Document"),
        (lambda r, d: r._scorer.score([(QUERY, 3)]), InputTypeError, r"`text_pairs\[0\]\[1\]` must be a str"),
    ],
)
def test_langchain_reranker_bad_inputs_raise_typed_errors(cross_folder, docs, call, error, match):
    reranker = CrossEncoderReranker(model=str(cross_folder), device="cpu")
    with pytest.raises(error, match=match):
        call(reranker, docs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"top_k": 3}, "Extra inputs are not permitted"),
        ({"top_n": 0}, "greater than 0"),
        ({"batch_size": -1}, "greater than 0"),
        ({"score_threshold": "high"}, "valid number"),
        ({"model": 42}, "model"),
    ],
)
def test_langchain_reranker_bad_fields_are_rejected(cross_folder, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        CrossEncoderReranker(**{"model": str(cross_folder), "device": "cpu", **kwargs})


def test_langchain_reranker_settings_that_cannot_apply_are_rejected(cross_folder):
    model = get_model("cross", str(cross_folder), device="cpu")
    with pytest.raises(ValidationError, match="`device` must be None when `model` is a CrossEncoder instance"):
        LangChainCrossEncoder(model=model, device="cpu")
    with pytest.raises(ValidationError, match="`batch_size`, `device` only apply when `model` is a name"):
        CrossEncoderReranker(model=Fixed({}), batch_size=8, device="cpu")
    assert CrossEncoderReranker(model=model, top_n=1)._scorer.client is model
