"""`st-plugins index` and `st-plugins search` on the docs/ corpus that ships with the repo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("chromadb")

from st_plugins.cli import main  # noqa: E402
from st_plugins.commands.search import MAKE_RERANKER, RERANKER  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted(p.name for p in (REPO / "docs").glob("*.md"))


@pytest.fixture(scope="module")
def docs_db(tmp_path_factory):
    """docs/ indexed once with the real model (run from the repo root, as the README does)."""
    db = tmp_path_factory.mktemp("cli") / "db"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert main(["index", "docs", "--db", str(db), "--quiet"]) == 0
    finally:
        os.chdir(cwd)
    return db


def _search(capsys, db, query, *extra):
    code = main(["search", query, "--db", str(db), *extra])
    out = capsys.readouterr()
    hits = re.findall(r"^(\d+)\. (\S+) (-?\d+\.\d+)  (\S+) \(passage (\d+)\)$", out.out, flags=re.MULTILINE)
    return code, hits, out


def test_cli_index_is_idempotent_and_counts_passages(docs_db, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["index", "docs", "--db", str(docs_db), "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    match = re.fullmatch(rf"Indexed (\d+) passages from {len(DOCS)} files into collection 'st_plugins' at .*: "
                         r"0 new, (\d+) already present \((\d+) in total\)\.", line)
    assert match, line
    passages, present, total = map(int, match.groups())
    assert passages == present == total >= len(DOCS)


@pytest.mark.parametrize("query, expected", [
    ("Which pip extras can I install?", "docs/installation.md"),
    ("rerank candidates with a cross-encoder", "docs/reranking.md"),
    ("reopen a Chroma collection in a new process", "docs/chroma.md"),
    ("make embeddings smaller with binary quantization", "docs/semantic-search.md"),
    ("use prompts for queries and documents", "docs/embeddings.md"),
])
def test_cli_search_finds_the_right_page(docs_db, capsys, oracle, query, expected):
    code, hits, out = _search(capsys, docs_db, query, "-k", "3")
    assert code == 0 and len(hits) == 3, out
    assert hits[0][3] == expected, out.out
    scores = [float(h[2]) for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h[1] == "similarity" for h in hits)
    # Each printed score is the cosine similarity sentence-transformers gives the query and that passage.
    import chromadb

    stored = chromadb.PersistentClient(path=str(docs_db)).get_collection("st_plugins")
    for _, _, score, source, passage in hits:
        found = stored.get(where={"$and": [{"source": source}, {"passage": int(passage)}]}, include=["documents"])
        assert len(found["documents"]) == 1, (source, passage)
        query_vec, passage_vec = oracle.encode([query, found["documents"][0]], normalize_embeddings=True)
        assert abs(float(query_vec @ passage_vec) - float(score)) <= 6e-5  # printed with 4 decimals


def test_cli_search_rerank_without_reranker_says_how_to_make_it(docs_db, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path / "empty_home"))
    code, hits, out = _search(capsys, docs_db, "anything", "--rerank")
    assert code != 0 and hits == []
    assert RERANKER in out.err and MAKE_RERANKER in out.err
    assert "Traceback" not in out.err and len(out.err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def tiny_reranker_dir(tmp_path_factory, minilm_path):
    """A random 1-label BERT classifier with MiniLM's tokenizer (stands in for the trained reranker)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_reranker")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    return folder


def test_cli_search_rerank_orders_by_cross_encoder(docs_db, capsys, monkeypatch, tiny_reranker_dir):
    from st_plugins.core import cache, resolve

    monkeypatch.setitem(resolve._REGISTRY, RERANKER, lambda: tiny_reranker_dir)
    # The shared models are keyed by name, and this name means another folder here only: an empty cache for this
    # test, the process's own back afterwards (no other test sees the tiny reranker, or loses its models).
    monkeypatch.setattr(cache, "_MODELS", {})
    code, plain, _ = _search(capsys, docs_db, "rerank search results", "-k", "20")
    code_r, reranked, out = _search(capsys, docs_db, "rerank search results", "--rerank", "-k", "3", "--candidates", "20")
    assert code == code_r == 0 and len(reranked) == 3, out
    assert all(h[1] == "rerank" for h in reranked)
    from st_plugins.chroma import open_collection
    from st_plugins.core.cross_encoder import CrossEncoder

    query = "rerank search results"
    found = open_collection(str(docs_db), "st_plugins").query(query_texts=[query], n_results=20,
                                                              include=["documents", "metadatas"])
    scores = CrossEncoder(tiny_reranker_dir, device="cpu").predict([(query, d) for d in found["documents"][0]])
    best = sorted(zip(scores.tolist(), found["metadatas"][0]), key=lambda x: x[0], reverse=True)[:3]
    assert [(m["source"], m["passage"]) for _, m in best] == [(h[3], int(h[4])) for h in reranked]
    assert [f"{s:.4f}" for s, _ in best] == [h[2] for h in reranked]
    assert {(h[3], int(h[4])) for h in reranked} <= {(h[3], int(h[4])) for h in plain}


@pytest.mark.parametrize("argv, pattern", [
    (["search", "q", "--db", "{tmp}/nowhere"], r"No Chroma database at '.*nowhere'. Create one with: st-plugins index"),
    (["index", "{tmp}/missing.md", "--db", "{tmp}/db"], r"missing\.md` does not exist"),
    (["index", "{repo}/pyproject.toml", "--db", "{tmp}/db"], r"pyproject\.toml` is not a \.txt or \.md file"),
    (["search", "q", "--db", "{db}", "--collection", "nope"], r"No collection 'nope' in .*; it has \['st_plugins'\]"),
    (["search", "q", "--db", "{db}", "-k", "0"], r"`-k` must be a positive int; got 0"),
    (["index", "{repo}/docs/index.md", "--db", "{db}", "--model", "paraphrase-MiniLM-L3-v2"], r"Cannot change \['model_name'\]"),
    (["index", "{repo}/docs/index.md", "--db", "{tmp}/nowhere", "--actors", "2"], r"--actors and --gpus-per-actor need --ray"),
    (["index", "--ray", "{repo}/docs/index.md", "{repo}/docs/chroma.md", "--db", "{tmp}/nowhere"],
     r"--ray takes a cluster address .*got '.*index\.md'\. It is a path: put --ray after the paths"),
    (["search", "q", "--chroma-url", "localhost:8000"], r"A Chroma server URL must look like http://HOST:PORT"),
    (["search", "q", "--chroma-url", "http://127.0.0.1:9"], r"No Chroma server answers at http://127\.0\.0\.1:9 .*chroma run"),
])
def test_cli_errors_are_one_line_exit_2(docs_db, capsys, tmp_path, argv, pattern):
    fill = {"tmp": tmp_path, "repo": REPO, "db": docs_db}
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(pattern, err), err
    assert len(err.splitlines()) == 1 and err.startswith(f"st-plugins {argv[0]}: error:")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("command", ["index", "search"])
def test_cli_help_describes_each_command(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--db" in out and "--collection" in out and (command == "index" or "--rerank" in out)


def test_cli_runs_as_a_program_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "st_plugins.cli", "search", "q", "--db", str(tmp_path / "none")],
                          check=False, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "No Chroma database" in done.stderr
