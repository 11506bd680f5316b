"""Every entry point runs on the torch-free runtime once the graphs are cached: fresh subprocesses that
import neither torch nor transformers, and give the in-process (oracle-checked) results.

The graphs are built first, into this run's ``$ST_PLUGINS_HOME`` (the first use of a model on a machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PASTA_CORPUS, PASTA_QUERY, SENTENCES

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
HEAVY = "sorted(m for m in ('torch', 'transformers') if m in sys.modules)"


def _run(code: str, *args: str, timeout: int = 300) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "building the" not in done.stderr, "graphs should have been cached by the fixture"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def lean_model():
    """A private instance of the packaged model (the shared one may run torch after other tests trained it)."""
    from st_plugins import SentenceTransformer

    return SentenceTransformer("all-MiniLM-L6-v2", device="cpu")


@pytest.fixture(scope="module")
def bi_graph(lean_model):
    """The packaged model's graph, built (in a child process) or found in this run's cache."""
    assert lean_model.graph is not None
    return lean_model.graph


@pytest.fixture(scope="module")
def reranker():
    from st_plugins import CrossEncoder
    from st_plugins.errors import ModelNotFoundError

    try:
        cross = CrossEncoder("st-plugins/stsb-reranker", device="cpu")
    except ModelNotFoundError:
        pytest.skip("the STS reranker is not trained here; run `st-plugins train-reranker --quick` first")
    assert cross.graph is not None
    return cross


def test_entry_seed_example_runs_without_torch(bi_graph, lean_model):
    out = _run(f"""
import json, sys
from st_plugins import SentenceTransformer
m = SentenceTransformer("all-MiniLM-L6-v2")
e = m.encode({SENTENCES!r})
print(json.dumps({{"heavy": {HEAVY}, "vectors": e.tolist()}}))
""")
    assert out["heavy"] == []
    assert np.abs(np.array(out["vectors"]) - lean_model.encode(SENTENCES)).max() <= 1e-6


def test_entry_chroma_build_reopen_query_without_torch(bi_graph, tmp_path):
    pytest.importorskip("chromadb")
    build = _run(f"""
import json, sys, chromadb
from st_plugins.chroma import ChromaEmbeddingFunction
from st_plugins.indexing import index_documents
client = chromadb.PersistentClient(sys.argv[1])
col = client.get_or_create_collection("notes", embedding_function=ChromaEmbeddingFunction("all-MiniLM-L6-v2"))
index_documents(col, {PASTA_CORPUS!r})
print(json.dumps({{"heavy": {HEAVY}, "count": col.count()}}))
""", str(tmp_path / "db"))
    assert build == {"heavy": [], "count": len(PASTA_CORPUS)}
    query = _run(f"""
import json, sys, chromadb
import st_plugins.chroma
col = chromadb.PersistentClient(sys.argv[1]).get_collection("notes")
hits = col.query(query_texts=[{PASTA_QUERY!r}], n_results=2)
print(json.dumps({{"heavy": {HEAVY}, "top": hits["documents"][0]}}))
""", str(tmp_path / "db"))
    assert query["heavy"] == [] and query["top"][0] in PASTA_CORPUS[:2]


def test_entry_langchain_and_sklearn_without_torch(bi_graph, reranker, lean_model):
    pytest.importorskip("langchain_core")
    pytest.importorskip("sklearn")
    out = _run(f"""
import json, sys
from langchain_core.documents import Document
from st_plugins.langchain import CrossEncoderReranker, LangChainEmbeddings
from st_plugins.sklearn import CrossEncoderScorer, EmbeddingTransformer
docs = {PASTA_CORPUS!r}
emb = LangChainEmbeddings(model="all-MiniLM-L6-v2")
vectors = emb.embed_documents(docs)
ranked = CrossEncoderReranker(model="st-plugins/stsb-reranker", top_n=2).compress_documents(
    [Document(page_content=d) for d in docs], {PASTA_QUERY!r})
features = EmbeddingTransformer().fit_transform(docs)
pairs = [({PASTA_QUERY!r}, d) for d in docs]
scores = CrossEncoderScorer().fit(pairs).predict(pairs)
print(json.dumps({{"heavy": {HEAVY}, "vectors": vectors, "features": features.tolist(),
                  "ranked": [d.page_content for d in ranked], "scores": scores.tolist()}}))
""")
    assert out["heavy"] == []
    want = lean_model.encode_document(PASTA_CORPUS)
    assert np.abs(np.array(out["vectors"]) - want).max() <= 1e-6
    assert np.abs(np.array(out["features"]) - lean_model.encode(PASTA_CORPUS)).max() <= 1e-6
    expected = reranker.predict([(PASTA_QUERY, d) for d in PASTA_CORPUS])
    assert np.abs(np.array(out["scores"]) - expected).max() <= 1e-6
    assert out["ranked"] == [PASTA_CORPUS[i] for i in np.argsort(-expected, kind="stable")[:2]]


def test_entry_cli_index_and_search_without_torch(bi_graph, reranker, tmp_path):
    pytest.importorskip("chromadb")
    code = f"""
import json, sys, io, contextlib
from st_plugins.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    rc = main(sys.argv[1:])
print(json.dumps({{"heavy": {HEAVY}, "rc": rc, "out": buf.getvalue()}}))
"""
    db = str(tmp_path / "db")
    index = _run(code, "index", str(ROOT / "docs"), "--db", db, "--quiet")
    assert index["rc"] == 0 and index["heavy"] == [] and "passages" in index["out"]
    search = _run(code, "search", "reopen a Chroma collection in a new process", "--db", db, "-k", "2")
    assert search["rc"] == 0 and search["heavy"] == [] and "chroma.md" in search["out"]
    rerank = _run(code, "search", "reopen a Chroma collection in a new process", "--db", db, "-k", "2", "--rerank")
    assert rerank["rc"] == 0 and rerank["heavy"] == [] and "rerank" in rerank["out"]
