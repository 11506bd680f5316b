"""The plain install (``pip install st-plugins``, plus the chroma and langchain extras): no torch, no transformers.

CI runs this file in a venv of its own (``ST_PLUGINS_EXPECT_NO_TORCH=1 pytest tests/plain``; see the README).
Each entry point runs from an empty ``$ST_PLUGINS_HOME``, so the graph is written from the model's
safetensors on first use, in the user's process. The figures checked come from sentence-transformers (the
quickstart's documented similarities, which tests/test_examples.py compares with the oracle in the full venv).
In the full venv these tests skip: there torch is installed, and tests/test_entry_points_without_torch.py
checks the same entry points in fresh processes that do not import it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PASTA_CORPUS, PASTA_QUERY

ROOT = Path(__file__).resolve().parents[2]
EXPECT_NO_TORCH = os.environ.get("ST_PLUGINS_EXPECT_NO_TORCH") == "1"
HEAVY = ("torch", "transformers", "sentence_transformers")
INSTALLED = [m for m in HEAVY if importlib.util.find_spec(m) is not None]
pytestmark = pytest.mark.skipif(bool(INSTALLED) and not EXPECT_NO_TORCH,
                                reason=f"{INSTALLED} installed: these run in the torch-free venv (see the README)")
SEED_SIMILARITIES = [[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]]  # sentence-transformers'


def _run(args: list[str], home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "ST_PLUGINS_HOME": str(home)}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _python(code: str, home: Path, *args: str) -> dict:
    done = _run([sys.executable, "-c", code, *args], home)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_plain_venv_has_neither_torch_nor_transformers():
    assert INSTALLED == []


def test_plain_seed_example_from_an_empty_cache(tmp_path):
    """examples/quickstart.py, first use on this machine: the graph is built from safetensors on the way."""
    out = _run([sys.executable, "examples/quickstart.py"], tmp_path / "home").stdout
    assert "(3, 384)" in out
    matrix = [[float(x) for x in re.findall(r"[-0-9.]+(?:e[-+]?\d+)?", row)]
              for row in out.split("(3, 384)", 1)[1].split("Query:", 1)[0].strip().splitlines()]
    np.testing.assert_allclose(np.array(matrix), SEED_SIMILARITIES, atol=1e-4)
    pasta = out.split("Query: A man is eating pasta.")[1].splitlines()
    assert pasta[1].endswith("A man is eating food.") and pasta[2].endswith("A man is eating a piece of bread.")
    graphs = list((tmp_path / "home" / "backends").rglob("meta.json"))
    assert len(graphs) == 1 and json.loads(graphs[0].read_text())["builder"] == "safetensors"


def test_plain_chroma_function_builds_reopens_and_queries(tmp_path):
    code = f"""
import json, sys, chromadb
from st_plugins.chroma import ChromaEmbeddingFunction
from st_plugins.indexing import index_documents
client = chromadb.PersistentClient(sys.argv[1])
col = client.get_or_create_collection("notes", embedding_function=ChromaEmbeddingFunction("all-MiniLM-L6-v2"))
index_documents(col, {PASTA_CORPUS!r})
print(json.dumps({{"count": col.count(), "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    assert _python(code, tmp_path / "home", str(tmp_path / "db")) == {"count": len(PASTA_CORPUS), "heavy": []}
    query = f"""
import json, sys, chromadb
import st_plugins.chroma
col = chromadb.PersistentClient(sys.argv[1]).get_collection("notes")
hits = col.query(query_texts=[{PASTA_QUERY!r}], n_results=2)
print(json.dumps({{"top": hits["documents"][0], "name": col._embedding_function.name()}}))
"""
    found = _python(query, tmp_path / "home", str(tmp_path / "db"))
    assert found["top"] == ["A man is eating food.", "A man is eating a piece of bread."]


def test_plain_langchain_embeddings_match_the_bi_encoder(tmp_path):
    code = f"""
import json
from st_plugins import SentenceTransformer
from st_plugins.langchain import LangChainEmbeddings
emb = LangChainEmbeddings(model="all-MiniLM-L6-v2")
model = SentenceTransformer("all-MiniLM-L6-v2")
print(json.dumps({{"docs": emb.embed_documents({PASTA_CORPUS!r}), "query": emb.embed_query({PASTA_QUERY!r}),
                  "direct_docs": model.encode_document({PASTA_CORPUS!r}).tolist(),
                  "direct_query": model.encode_query({PASTA_QUERY!r}).tolist(),
                  "similarity": model.similarity(model.encode({PASTA_CORPUS[:2]!r}), model.encode({PASTA_CORPUS[:2]!r})).tolist()}}))
"""
    out = _python(code, tmp_path / "home")
    docs, query = np.array(out["docs"]), np.array(out["query"])
    assert docs.shape == (len(PASTA_CORPUS), 384)
    np.testing.assert_allclose(docs, out["direct_docs"], atol=1e-6)
    np.testing.assert_allclose(query, out["direct_query"], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert np.argsort(docs @ query)[::-1][:2].tolist() == [0, 1]  # food, then bread (as in the quickstart)
    np.testing.assert_allclose(np.diag(out["similarity"]), 1.0, atol=1e-5)


def test_plain_cli_index_and_search(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    for i, text in enumerate(PASTA_CORPUS):
        (notes / f"{i}.txt").write_text(text, encoding="utf-8")
    home, db = tmp_path / "home", tmp_path / "db"
    _run(["st-plugins", "index", str(notes), "--db", str(db), "--quiet"], home)
    out = _run(["st-plugins", "search", PASTA_QUERY, "--db", str(db), "-k", "2"], home).stdout
    assert out.index("A man is eating food.") < out.index("A man is eating a piece of bread.")


def test_plain_what_needs_torch_names_the_extra(tmp_path):
    code = """
import json
from st_plugins import SentenceTransformer
from st_plugins.errors import MissingDependencyError
said = {}
for name, call in {"backend": lambda: SentenceTransformer("all-MiniLM-L6-v2", backend="torch"),
                   "parameters": lambda: list(SentenceTransformer("all-MiniLM-L6-v2").parameters()),
                   "training": lambda: __import__("st_plugins.training", fromlist=["Trainer"]).Trainer}.items():
    try:
        call()
        said[name] = "no error"
    except MissingDependencyError as exc:
        said[name] = str(exc)
print(json.dumps(said))
"""
    said = _python(code, tmp_path / "home")
    assert all('pip install "st-plugins[torch]"' in message for message in said.values()), said
    done = subprocess.run(["st-plugins", "train-reranker", "--quick"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "ST_PLUGINS_HOME": str(tmp_path / "home")}, timeout=120)
    assert done.returncode != 0 and "st-plugins[torch]" in done.stderr and "Traceback" not in done.stderr
