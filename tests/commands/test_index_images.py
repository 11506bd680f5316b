"""`st-plugins index` / `st-plugins search` with images beside the texts: an image-text model indexes them (by uri)
and text queries find them, ranked and scored as sentence-transformers' vectors say; a text-only model skips them
with one line on stderr."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")
st = pytest.importorskip("sentence_transformers")

from st_plugins.cli import main  # noqa: E402
from tests import factories  # noqa: E402
from tests.image_files import write_images  # noqa: E402

HIT = re.compile(r"^(\d+)\. (\S+) (-?\d+\.\d+)  (\S+) \((image|passage \d+)\)$", flags=re.MULTILINE)
NOTES = "# Notes\n\nA red square on a white page.\n\nThe cat sat on the mat, number 3."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """docs/notes.md, docs/img/*.png|jpg|jpeg (six images), docs/skip.txt (empty: no passage)."""
    root = tmp_path_factory.mktemp("cli_images") / "docs"
    root.mkdir()
    (root / "notes.md").write_text(NOTES, encoding="utf-8")
    (root / "skip.txt").write_text("", encoding="utf-8")
    write_images(root / "img")
    return root


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def image_db(corpus, clip_dir, tmp_path_factory):
    db = tmp_path_factory.mktemp("cli_image_db") / "db"
    assert main(["index", str(corpus), "--db", str(db), "--model", str(clip_dir), "--device", "cpu", "--quiet",
                 "--max-words", "8"]) == 0
    return db


def test_cli_index_adds_images_beside_texts_once(image_db, corpus, clip_dir, clip_oracle, capsys):
    code, out, err = run(capsys, "index", str(corpus), "--db", str(image_db), "--model", str(clip_dir), "--quiet",
                         "--max-words", "8")
    assert code == 0 and err == ""
    assert re.fullmatch(r"Indexed 2 passages from 1 files and 6 images into collection 'st_plugins' at .*: "
                        r"0 new, 8 already present \(8 in total\)\.", out.strip()), out
    stored = chromadb.PersistentClient(path=str(image_db)).get_collection("st_plugins").get(
        where={"kind": "image"}, include=["uris", "metadatas", "embeddings"])
    files = sorted((corpus / "img").iterdir())
    by_source = {m["source"]: (uri, vec) for m, uri, vec in zip(stored["metadatas"], stored["uris"], stored["embeddings"])}
    assert sorted(by_source) == sorted(p.as_posix() for p in files)
    for path in files:
        uri, vector = by_source[path.as_posix()]
        assert uri == str(path.resolve())
        np.testing.assert_allclose(vector, clip_oracle.encode(str(path)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("query", ["a red square", "a photo of a cat", "number 3"])
def test_cli_search_finds_images_by_text_in_oracle_order(image_db, corpus, clip_oracle, capsys, query):
    code, out, err = run(capsys, "search", query, "--db", str(image_db), "-k", "8", "--device", "cpu")
    assert code == 0 and err == "", err
    hits = HIT.findall(out)
    assert len(hits) == 8 and {h[4] for h in hits} >= {"image", "passage 0"}
    stored = chromadb.PersistentClient(path=str(image_db)).get_collection("st_plugins").get(
        include=["documents", "metadatas"])
    items = {(m["source"], "image" if m.get("kind") == "image" else f"passage {m['passage']}"):
             (Path(m["source"]) if doc is None else doc) for doc, m in zip(stored["documents"], stored["metadatas"])}
    keys = list(items)
    vectors = np.stack([clip_oracle.encode(str(v)) if isinstance(v, Path) else clip_oracle.encode_document(v)
                        for v in items.values()])
    q = clip_oracle.encode_query(query)
    sims = vectors @ q / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(q))
    assert [(h[3], h[4]) for h in hits] == [keys[i] for i in np.argsort(-sims, kind="stable")]
    np.testing.assert_allclose([float(h[2]) for h in hits], np.sort(sims)[::-1], atol=6e-5)  # 4 decimals
    for source, line in re.findall(r"^\d+\. \S+ \S+  (\S+) \(image\)\n   (\S+)$", out, flags=re.MULTILINE):
        assert line == str(Path(source).resolve())


def test_cli_index_text_model_skips_images_with_one_line(corpus, tiny_bi_dir, tmp_path, capsys):
    db = str(tmp_path / "db")
    code, out, err = run(capsys, "index", str(corpus), "--db", db, "--model", str(tiny_bi_dir), "--quiet")
    assert code == 0
    assert err.splitlines() == ["st-plugins index: skipped 6 image files: collection 'st_plugins' embeds texts only "
                                "(its model has no image tower)."]
    assert re.fullmatch(r"Indexed \d+ passages from 1 files into collection 'st_plugins' at .*: \d+ new, 0 already "
                        r"present \(\d+ in total\)\.", out.strip()), out
    assert chromadb.PersistentClient(path=db).get_collection("st_plugins").get(where={"kind": "image"})["ids"] == []


def test_cli_index_only_images_with_a_text_model_is_one_error_line(corpus, tiny_bi_dir, tmp_path, capsys):
    code, out, err = run(capsys, "index", str(corpus / "img"), "--db", str(tmp_path / "db"), "--model",
                         str(tiny_bi_dir), "--quiet")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "No .txt/.md text found" in err and "6 image files cannot be indexed" in err and "Traceback" not in err


def test_cli_index_named_image_files_and_a_server(corpus, clip_dir, clip_oracle, chroma_server, capsys):
    host, port = chroma_server
    url = f"http://{host}:{port}"
    files = [str(corpus / "img" / "red.png"), str(corpus / "img" / "blue.jpeg")]
    code, out, err = run(capsys, "index", *files, "--chroma-url", url, "--collection", "cli-images", "--model",
                         str(clip_dir), "--quiet")
    assert code == 0 and err == ""
    assert re.search(r"Indexed 2 images into collection 'cli-images' at .*: 2 new, 0 already present \(2 in total\)",
                     out), out
    code, out, err = run(capsys, "search", "a red square", "--chroma-url", url, "--collection", "cli-images", "-k", "2")
    hits = HIT.findall(out)
    sims = [float(clip_oracle.similarity(clip_oracle.encode("a red square"), clip_oracle.encode(f)).item()) for f in files]
    assert code == 0 and [h[3] for h in hits] == [files[i] for i in np.argsort(sims)[::-1]]
    np.testing.assert_allclose([float(h[2]) for h in hits], sorted(sims, reverse=True), atol=6e-5)


def test_cli_search_rerank_leaves_images_out_with_one_line(image_db, capsys, monkeypatch):
    from st_plugins.commands import search
    from st_plugins.core.cross_encoder import CrossEncoder

    reranker = CrossEncoder(str(factories.cross_folder("bert", 1)), device="cpu")  # not cached under the real name
    capsys.readouterr()  # the factory's own output
    monkeypatch.setattr(search, "load_reranker", lambda device=None: reranker)
    code, out, err = run(capsys, "search", "a red square", "--db", str(image_db), "--rerank", "-k", "8",
                         "--candidates", "8", "--device", "cpu")
    assert code == 0 and err.splitlines() == ["st-plugins search: --rerank scores texts only; left out 6 image hits."]
    hits = HIT.findall(out)
    assert len(hits) == 2 and all(h[1] == "rerank" and h[4].startswith("passage") for h in hits)
