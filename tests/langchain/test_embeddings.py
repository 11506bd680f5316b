"""LangChainEmbeddings: prompts, async safety, validation, and LangChain's standard test suites."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("langchain_core")
from langchain_tests.integration_tests import EmbeddingsIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import EmbeddingsUnitTests  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from st_plugins.core.cache import cache_key, load_counts  # noqa: E402
from st_plugins.errors import InputTypeError  # noqa: E402
from st_plugins.langchain import LangChainEmbeddings  # noqa: E402

PROMPTS = {"query": "query: ", "document": "passage: "}
TEXTS = ["The weather is lovely today.", "It's so sunny outside!", "", "  Two\nlines, leading spaces.",
         "Ünïcödé 🙂 漢字", "word " * 100]


@pytest.fixture(scope="module")
def prompted_folder(make_st_folder):
    """A tiny random sentence-transformers folder with distinct query and document prompts."""
    return make_st_folder(prompts=PROMPTS)


@pytest.fixture(scope="module")
def prompted_oracle(prompted_folder):
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(prompted_folder), device="cpu")


@pytest.fixture
def emb(prompted_folder):
    return LangChainEmbeddings(model=str(prompted_folder), device="cpu")


def test_langchain_embeddings_documents_use_document_prompt(emb, prompted_oracle):
    got = np.array(emb.embed_documents(TEXTS))
    want = prompted_oracle.encode(TEXTS, prompt_name="document")
    np.testing.assert_allclose(got, want, atol=1e-5)
    plain = prompted_oracle.encode(TEXTS)
    assert np.abs(got - plain).max() > 1e-3  # the prompt changes the vectors of this random model


def test_langchain_embeddings_query_uses_query_prompt(emb, prompted_oracle):
    for text in TEXTS[:3]:
        np.testing.assert_allclose(emb.embed_query(text), prompted_oracle.encode(text, prompt_name="query"), atol=1e-5)
    assert np.abs(np.array(emb.embed_query(TEXTS[0])) - emb.embed_documents(TEXTS[:1])[0]).max() > 1e-3


def test_langchain_embeddings_explicit_prompt_names(prompted_folder, prompted_oracle):
    swapped = LangChainEmbeddings(model=str(prompted_folder), device="cpu",
                                  query_prompt_name="document", document_prompt_name="query")
    np.testing.assert_allclose(swapped.embed_query(TEXTS[0]), prompted_oracle.encode(TEXTS[0], prompt_name="document"),
                               atol=1e-5)
    np.testing.assert_allclose(swapped.embed_documents(TEXTS[:2]), prompted_oracle.encode(TEXTS[:2], prompt_name="query"),
                               atol=1e-5)


def test_langchain_embeddings_texts_reach_the_model_unchanged(emb, monkeypatch):
    seen = []
    original = emb.client.encode_document
    monkeypatch.setattr(emb.client, "encode_document", lambda texts, **kw: seen.append(list(texts)) or original(texts, **kw))
    emb.embed_documents(TEXTS)
    assert seen == [TEXTS]


def test_langchain_embeddings_normalize_and_batch_size(prompted_folder, emb):
    normed = LangChainEmbeddings(model=str(prompted_folder), device="cpu", normalize_embeddings=True, batch_size=1)
    raw = np.array(emb.embed_documents(TEXTS))
    got = np.array(normed.embed_documents(TEXTS))
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)


def test_langchain_embeddings_share_one_cached_model(prompted_folder):
    a = LangChainEmbeddings(model=str(prompted_folder), device="cpu")
    b = LangChainEmbeddings(model=str(prompted_folder), device="cpu", batch_size=4)
    assert a.client is b.client
    assert load_counts()[cache_key("bi", str(prompted_folder), device="cpu")] == 1


def test_langchain_embeddings_empty_and_types(emb):
    assert emb.embed_documents([]) == []
    vec = emb.embed_query("x")
    assert type(vec) is list and all(type(v) is float for v in vec) and len(vec) == 32


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda e: e.embed_documents("one text"), r"`texts` must be a list of str; got str"),
        (lambda e: e.embed_documents(["a", 3]), r"`texts\[1\]` must be a str; got int"),
        (lambda e: e.embed_documents(["a", None]), r"`texts\[1\]` must be a str; got NoneType"),
        (lambda e: e.embed_query(["a"]), r"`text` must be a str; got list"),
    ],
)
def test_langchain_embeddings_bad_inputs_raise_typed_errors(emb, call, match):
    with pytest.raises(InputTypeError, match=match):
        call(emb)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model_kwargs": {}}, "Extra inputs are not permitted"),
        ({"batch_size": 0}, "greater than 0"),
        ({"batch_size": "many"}, "valid integer"),
        ({"query_prompt_name": "search"}, r"`query_prompt_name` must be one of .*\['document', 'query'\].*'search'"),
        ({"document_prompt_name": "doc"}, r"`document_prompt_name` must be one of"),
    ],
)
def test_langchain_embeddings_bad_fields_are_rejected(prompted_folder, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        LangChainEmbeddings(model=str(prompted_folder), device="cpu", **kwargs)


async def test_langchain_embeddings_async_matches_sync_under_16_concurrent_calls(emb):
    doc_inputs = [TEXTS[i:] + TEXTS[:i] for i in range(8)]
    query_inputs = [TEXTS[i % len(TEXTS)] + f" #{i}" for i in range(8)]
    results = await asyncio.gather(*[emb.aembed_documents(t) for t in doc_inputs],
                                   *[emb.aembed_query(q) for q in query_inputs])
    want = [emb.embed_documents(t) for t in doc_inputs] + [emb.embed_query(q) for q in query_inputs]
    assert len(results) == 16
    for got, expected in zip(results, want):
        np.testing.assert_allclose(np.array(got), np.array(expected), atol=1e-6)


@pytest.mark.parametrize("method", ["aembed_documents", "aembed_query"])
async def test_langchain_embeddings_async_does_not_block_the_event_loop(emb, monkeypatch, method):
    """The model call waits until the event loop answers; on the loop thread it would wait in vain."""
    started, released, on_loop = threading.Event(), threading.Event(), []
    loop_thread = threading.get_ident()
    name = "encode_document" if method == "aembed_documents" else "encode_query"
    original = getattr(emb.client, name)

    def gated(*args, **kwargs):
        on_loop.append(threading.get_ident() == loop_thread)
        started.set()
        released.wait(timeout=10)
        return original(*args, **kwargs)

    monkeypatch.setattr(emb.client, name, gated)
    task = asyncio.ensure_future(getattr(emb, method)(["x"] if method == "aembed_documents" else "x"))
    while not started.is_set():
        await asyncio.sleep(0.01)
    released.set()
    assert await task
    assert on_loop == [False]


class TestLangChainEmbeddingsStandardUnit(EmbeddingsUnitTests):
    """LangChain's standard unit suite, on the tiny random model."""

    @pytest.fixture(autouse=True)
    def _folder(self, prompted_folder):
        self.folder = prompted_folder

    @property
    def embeddings_class(self):
        return LangChainEmbeddings

    @property
    def embedding_model_params(self):
        return {"model": str(self.folder), "device": "cpu"}


@pytest.mark.slow
class TestLangChainEmbeddingsStandardIntegration(EmbeddingsIntegrationTests):
    """LangChain's standard integration suite, on the packaged all-MiniLM-L6-v2 (shared with conftest)."""

    @property
    def embeddings_class(self):
        return LangChainEmbeddings

    @property
    def embedding_model_params(self):
        return {"model": "all-MiniLM-L6-v2", "device": "cpu"}


@pytest.mark.slow
def test_langchain_embeddings_real_model_matches_oracle(model, oracle):
    emb = LangChainEmbeddings(model="all-MiniLM-L6-v2", device="cpu")
    assert emb.client is model
    np.testing.assert_allclose(emb.embed_documents(TEXTS), oracle.encode_document(TEXTS), atol=1e-5)
    np.testing.assert_allclose(emb.embed_query(TEXTS[0]), oracle.encode_query(TEXTS[0]), atol=1e-5)


def test_langchain_missing_dependency_names_the_extra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['langchain_core'] = None\n"
            "import st_plugins.langchain as m\n"
            "try:\n    m.LangChainEmbeddings\nexcept ImportError as e:\n    print(type(e).__name__, e)")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.startswith("MissingDependencyError `langchain_core` is needed")
    assert 'pip install "st-plugins[langchain]"' in out.stdout
