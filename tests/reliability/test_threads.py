"""Threads: one shared model, or get_model from every thread, gives a single thread's vectors bit for bit.

Users put st_plugins inside servers (a Chroma server's embedding function, a LangChain app): requests
arrive on many threads at once and share one model. 8 threads here, on the real all-MiniLM-L6-v2.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.conftest import SENTENCES

THREADS = 8
TEXTS = [f"{s} (request {i})" for i in range(6) for s in SENTENCES[:6]] + SENTENCES  # 44 texts, every length


def _chunks(n: int) -> list[list[str]]:
    """Each thread gets every text, rotated: the threads' batches differ, the expected vectors do not."""
    return [TEXTS[i * 5 % len(TEXTS):] + TEXTS[: i * 5 % len(TEXTS)] for i in range(n)]


def _unrotate(i: int, emb: np.ndarray) -> np.ndarray:
    return np.roll(emb, i * 5 % len(TEXTS), axis=0)


def test_threads_sharing_one_model_give_single_thread_vectors_bitwise(model):
    expected = model.encode(TEXTS, batch_size=8)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda c: model.encode(c, batch_size=8), _chunks(THREADS)))
    for i, emb in enumerate(results):
        assert np.array_equal(_unrotate(i, emb), expected), f"thread {i}"


def test_threads_each_calling_get_model_load_once_and_agree_bitwise(model):
    from st_plugins.core.cache import cache_key, get_model, load_counts

    settings = {"device": "cpu", "backend": "onnx"}  # a key no other test loads: its load count starts at 0 here
    key = cache_key("bi", "all-MiniLM-L6-v2", **settings)
    before = load_counts().get(key, 0)

    def work(i: int):
        shared = get_model("bi", "all-MiniLM-L6-v2", **settings)
        return shared, shared.encode(_chunks(THREADS)[i], batch_size=8)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    assert load_counts()[key] - before == (0 if before else 1)
    assert len({id(m) for m, _ in results}) == 1
    expected = results[0][0].encode(TEXTS, batch_size=8)
    for i, (_, emb) in enumerate(results):
        assert np.array_equal(_unrotate(i, emb), expected), f"thread {i}"


def test_threads_cross_encoder_predict_agrees_bitwise(make_cross_folder):
    from st_plugins import CrossEncoder

    model = CrossEncoder(str(make_cross_folder("bert", 1)), device="cpu")
    pairs = [(a, b) for a in SENTENCES for b in SENTENCES[:4]]
    expected = model.predict(pairs, batch_size=4)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda k: model.predict(pairs[k:] + pairs[:k], batch_size=4), range(THREADS)))
    for k, scores in enumerate(results):
        assert np.array_equal(np.roll(scores, k), expected), f"thread {k}"


def test_threads_indexing_disjoint_documents_leave_each_once(model, tmp_path):
    chromadb = pytest.importorskip("chromadb")
    from st_plugins.chroma import ChromaEmbeddingFunction
    from st_plugins.indexing import content_id, index_documents

    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    collection = client.create_collection("threads", embedding_function=ChromaEmbeddingFunction(device="cpu"))
    docs = [[f"Thread {t} document {d}: {SENTENCES[d % 6]}" for d in range(25)] for t in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda texts: index_documents(collection, texts, batch_size=7, show_progress_bar=False), docs))
    texts = [t for chunk in docs for t in chunk]
    got = collection.get(include=["documents", "embeddings"])
    assert collection.count() == len(texts) == 200
    assert sorted(got["ids"]) == sorted(content_id(t) for t in texts)
    by_id = dict(zip(got["ids"], np.asarray(got["embeddings"])))
    np.testing.assert_allclose(np.stack([by_id[content_id(t)] for t in texts]), model.encode(texts), atol=1e-6)
