"""Real Chroma, both ways it is used, on the STS benchmark test split.

The 1,379 ``sts-test.csv`` second sentences are the corpus and the first sentences the queries; a
query is answered when the retrieved passage is its own second sentence. Chroma's recall@1/@10 must
equal what ``util.semantic_search`` gives on the very vectors Chroma stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")

from st_plugins import util  # noqa: E402
from st_plugins.chroma import ChromaEmbeddingFunction  # noqa: E402
from st_plugins.indexing import index_documents  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
HNSW = {"space": "cosine", "ef_construction": 200, "ef_search": 200}
REOPEN_QUERIES = 100


def _recall(retrieved: list[list[str]], wanted: list[str], k: int) -> float:
    return float(np.mean([w in r[:k] for r, w in zip(retrieved, wanted)]))


def round_trip(client, pairs, name: str) -> dict:
    """Create, index, query through Chroma; the same search done by the core on Chroma's stored vectors."""
    queries, docs = [p.sentence1 for p in pairs], [p.sentence2 for p in pairs]
    ef = ChromaEmbeddingFunction("all-MiniLM-L6-v2", device="cpu")
    collection = client.create_collection(name, embedding_function=ef, configuration={"hnsw": HNSW})
    result = index_documents(collection, docs, batch_size=256, show_progress_bar=False)
    assert collection.count() == len(set(docs)) and result.added == len(set(docs))

    query_vectors = ef.embed_query(queries)
    found = collection.query(query_embeddings=query_vectors, n_results=10, include=["documents", "distances"])
    stored = collection.get(include=["documents", "embeddings"])
    hits = util.semantic_search(np.stack(query_vectors), np.asarray(stored["embeddings"], dtype=np.float32), top_k=10)
    core = [[stored["documents"][h["corpus_id"]] for h in row] for row in hits]
    chroma = found["documents"]
    figures = {k: (_recall(chroma, docs, k), _recall(core, docs, k)) for k in (1, 10)}
    for k, (by_chroma, by_core) in figures.items():
        assert by_chroma == by_core, f"recall@{k}: Chroma {by_chroma} != core semantic_search {by_core}"
    # Same neighbours, same scores (cosine distance = 1 - cosine similarity), up to float noise.
    core_scores = np.array([[h["score"] for h in row] for row in hits])
    np.testing.assert_allclose(1 - np.array(found["distances"]), core_scores, atol=1e-5)
    assert np.mean([c[0] == s[0] for c, s in zip(chroma, core)]) == 1.0
    strong = [i for i, p in enumerate(pairs) if p.score >= 4]  # pairs that really are paraphrases
    figures_strong = {k: _recall([chroma[i] for i in strong], [docs[i] for i in strong], k) for k in (1, 10)}
    return {"recall@1": figures[1][0], "recall@10": figures[10][0], "strong@1": figures_strong[1],
            "strong@10": figures_strong[10], "n_strong": len(strong), "ids": found["ids"], "queries": queries}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, sts_test):
    path = tmp_path_factory.mktemp("chroma_embedded")
    outcome = round_trip(chromadb.PersistentClient(path=str(path)), sts_test, "sts")
    print(f"\nembedded Chroma on sts-test ({len(sts_test)} pairs): recall@1={outcome['recall@1']:.4f} "
          f"recall@10={outcome['recall@10']:.4f}; on the {outcome['n_strong']} pairs scored >= 4: "
          f"recall@1={outcome['strong@1']:.4f} recall@10={outcome['strong@10']:.4f}")
    return path, outcome


def test_chroma_sts_recall_equals_core_semantic_search(embedded):
    _, outcome = embedded
    # Sanity: the partner of a real paraphrase (score >= 4) is usually the nearest passage; over all
    # pairs recall is lower, since many sts-test pairs are unrelated sentences (scores near 0).
    assert outcome["recall@1"] <= outcome["recall@10"] <= 1.0
    assert outcome["strong@1"] > 0.75 and outcome["strong@10"] > outcome["recall@10"]


REOPEN = textwrap.dedent("""
    import json, sys, chromadb
    import st_plugins.chroma  # registers the function; nothing is passed to get_collection
    from st_plugins.core.cache import load_counts
    collection = chromadb.PersistentClient(path=sys.argv[1]).get_collection("sts")
    queries = json.loads(sys.argv[2])
    ids = [collection.query(query_texts=[q], n_results=10)["ids"][0] for q in queries]
    print(json.dumps({"ids": ids, "loads": load_counts(), "ef": type(collection._embedding_function).__name__}))
""")


def test_chroma_sts_fresh_process_reopens_without_function(embedded):
    path, outcome = embedded
    queries = outcome["queries"][:REOPEN_QUERIES]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", REOPEN, str(path), json.dumps(queries)],
                          check=False, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply["ef"] == "DefaultEmbeddingFunction"  # no function passed: Chroma rebuilt ours from the config
    assert reply["ids"] == outcome["ids"][:REOPEN_QUERIES]  # identical results, one query at a time
    assert list(reply["loads"].values()) == [1]  # 100 queries, 100+ rebuilds, one model load


def test_chroma_sts_other_embedding_function_conflicts(embedded):
    from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

    path, _ = embedded
    client = chromadb.PersistentClient(path=str(path))
    with pytest.raises(ValueError, match=r"Embedding function conflict: new: onnx_mini_lm_l6_v2 vs persisted: st_plugins"):
        client.get_collection("sts", embedding_function=ONNXMiniLM_L6_V2())
    with pytest.raises(ValueError, match="Embedding function conflict"):
        client.get_or_create_collection("sts", embedding_function=ONNXMiniLM_L6_V2())


def test_chroma_sts_client_server_round_trip(chroma_server, sts_test):
    host, port = chroma_server
    pairs = sts_test[:300]
    outcome = round_trip(chromadb.HttpClient(host=host, port=port), pairs, "sts-http")
    print(f"\nChroma server on sts-test[:300]: recall@1={outcome['recall@1']:.4f} recall@10={outcome['recall@10']:.4f}")
    reopened = chromadb.HttpClient(host=host, port=port).get_collection("sts-http")
    assert reopened.configuration_json["embedding_function"]["name"] == "st_plugins"
    queries = outcome["queries"][:50]
    ids = reopened.query(query_texts=queries, n_results=10)["ids"]
    assert ids == outcome["ids"][:50]
