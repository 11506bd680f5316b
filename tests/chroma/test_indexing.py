"""index_documents and passage splitting against real chromadb, including a real kill midway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

chromadb = pytest.importorskip("chromadb")

from st_plugins.chroma import ChromaEmbeddingFunction  # noqa: E402
from st_plugins.errors import InputTypeError, InputValueError  # noqa: E402
from st_plugins.indexing import (  # noqa: E402
    content_id,
    index_documents,
    iter_text_files,
    read_passages,
    split_passages,
)

REPO = Path(__file__).resolve().parents[2]
TEXTS = [f"Document number {i} talks about topic {i % 7}." for i in range(40)]


@pytest.fixture(scope="module")
def tiny_folder(make_st_folder):
    return make_st_folder(normalize=True)


@pytest.fixture()
def collection(tmp_path, tiny_folder):
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    return client.create_collection("docs", embedding_function=ChromaEmbeddingFunction(tiny_folder, device="cpu"))


def test_index_documents_adds_once_and_rerun_adds_nothing(collection):
    first = index_documents(collection, TEXTS, batch_size=16, show_progress_bar=False)
    assert (first.added, first.skipped) == (40, 0)
    assert first.ids == [content_id(t) for t in TEXTS]
    again = index_documents(collection, TEXTS + ["One more text."], batch_size=16, show_progress_bar=False)
    assert (again.added, again.skipped) == (1, 40)
    assert collection.count() == 41
    stored = collection.get(ids=first.ids, include=["documents"])
    assert dict(zip(stored["ids"], stored["documents"])) == dict(zip(first.ids, TEXTS))


def test_index_documents_keeps_duplicate_texts_once_with_metadata(collection):
    result = index_documents(collection, ["same", "same", "other"], metadatas=[{"n": 0}, {"n": 1}, {"n": 2}],
                             show_progress_bar=False)
    assert (result.added, result.skipped, collection.count()) == (2, 0, 2)
    assert collection.get(ids=[content_id("same")], include=["metadatas"])["metadatas"] == [{"n": 0}]


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"texts": None}, InputTypeError, r"`texts` must be a str or a list of str; got NoneType"),
    ({"texts": []}, InputValueError, r"`texts` must be a non-empty list of str; got an empty list"),
    ({"texts": TEXTS[:3] + [3]}, InputTypeError, r"`texts\[3\]` must be a str; got int \(3\)"),
    ({"texts": TEXTS[:2], "ids": ["a"]}, InputValueError, r"`ids` must have one id per text \(2\); got 1"),
    ({"texts": TEXTS[:2], "ids": ["a", "a"]}, InputValueError, r"`ids\[0\]` and `ids\[1\]` are both 'a'"),
    ({"texts": TEXTS[:2], "ids": ["a", 5]}, InputTypeError, r"`ids\[1\]` must be a non-empty str; got 5"),
    ({"texts": TEXTS[:2], "metadatas": [{"a": 1}, {}]}, InputTypeError, r"`metadatas\[1\]` must be a non-empty dict"),
    ({"texts": TEXTS[:2], "batch_size": 0}, InputValueError, r"`batch_size` must be a positive int; got 0"),
])
def test_index_documents_bad_input_raises_and_writes_nothing(collection, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        index_documents(collection, show_progress_bar=False, **kwargs)
    assert collection.count() == 0


def test_split_passages_respects_paragraphs_sentences_and_headings():
    text = "# Title\n\nShort intro.\n\n## Part\n\n" + " ".join(f"Sentence {i} is here." for i in range(30)) + "\n\nTail."
    passages = split_passages(text, max_words=25)
    assert passages[0] == "# Title\nShort intro."
    assert passages[1].startswith("## Part\nSentence 0 is here.")
    assert all(len(p.split()) <= 25 for p in passages)
    assert passages[-1].endswith("Tail.")
    joined = " ".join(" ".join(passages).split())
    assert all(f"Sentence {i} is here." in joined for i in range(30))  # nothing lost
    assert split_passages("\n\n  \n") == []


def test_read_passages_finds_txt_and_md_and_refuses_others(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# A\n\nAlpha text.", encoding="utf-8")
    (tmp_path / "sub" / "b.txt").write_text("Beta text.\n\nGamma text.", encoding="utf-8")
    (tmp_path / "c.py").write_text("print('no')", encoding="utf-8")
    assert [p.name for p in iter_text_files([tmp_path])] == ["a.md", "b.txt"]
    passages = read_passages([tmp_path, tmp_path / "a.md"])
    assert [(Path(p.source).name, p.index) for p in passages] == [("a.md", 0), ("b.txt", 0)]
    with pytest.raises(InputValueError, match=r"c\.py` is not a \.txt or \.md file"):
        iter_text_files([tmp_path / "c.py"])
    with pytest.raises(InputValueError, match=r"missing` does not exist"):
        iter_text_files([tmp_path / "missing"])


CHILD = textwrap.dedent("""
    import sys, chromadb
    from st_plugins.chroma import ChromaEmbeddingFunction
    from st_plugins.indexing import index_documents
    db, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    texts = [f"Passage {i}: a note about subject {i % 13} and detail {i * 7 % 11}." for i in range(n)]
    collection = chromadb.PersistentClient(path=db).get_or_create_collection(
        "killed", embedding_function=ChromaEmbeddingFunction(model, device="cpu"))
    add = collection.add
    def reporting_add(**kwargs):
        add(**kwargs)
        print("batch", len(kwargs["ids"]), flush=True)
    collection.add = reporting_add
    result = index_documents(collection, texts, batch_size=20, show_progress_bar=False)
    print("done", result.added, result.skipped, flush=True)
""")


def test_index_documents_killed_midway_then_rerun_has_every_document_once(tmp_path, tiny_folder):
    n = 600
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-c", CHILD, str(tmp_path / "db"), str(tiny_folder), str(n)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    batches = 0
    for line in proc.stdout:
        batches += line.startswith("batch")
        if batches == 3:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, "the indexing run finished before it could be killed"

    rerun = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    _, added, skipped = rerun.stdout.strip().splitlines()[-1].split()
    assert int(skipped) >= 60 and int(added) + int(skipped) == n  # 3+ batches of 20 survived the kill

    texts = [f"Passage {i}: a note about subject {i % 13} and detail {i * 7 % 11}." for i in range(n)]
    collection = chromadb.PersistentClient(path=str(tmp_path / "db")).get_collection("killed")
    assert collection.count() == n
    stored = collection.get(include=["documents"])
    assert sorted(stored["documents"]) == sorted(texts)  # every document, exactly once
    assert set(stored["ids"]) == {content_id(t) for t in texts}
    hit = collection.query(query_embeddings=collection.get(ids=[content_id(texts[5])], include=["embeddings"])["embeddings"],
                           n_results=1)
    assert hit["ids"][0] == [content_id(texts[5])]  # the vector index is consistent too
