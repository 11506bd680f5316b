"""ChromaMultimodalEmbeddingFunction and ImageLoader against real chromadb and the sentence-transformers oracle.

One tiny random CLIP (:func:`tests.factories.tiny_clip`), six generated image files (:mod:`tests.image_files`).
Vectors are compared with sentence-transformers on the same folder (1e-5, one modality per call); Chroma's
text->image and image->image answers with a ranking computed from the oracle's vectors; collections live in an
embedded client, a real ``chroma run`` server, and a fresh process that reopens them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")
st = pytest.importorskip("sentence_transformers")
Image = pytest.importorskip("PIL.Image")

from chromadb.api.types import EmbeddingFunction  # noqa: E402
from chromadb.utils.data_loaders import ImageLoader as ChromaImageLoader  # noqa: E402
from chromadb.utils.embedding_functions import known_embedding_functions  # noqa: E402

from st_plugins.chroma import ChromaEmbeddingFunction, ChromaMultimodalEmbeddingFunction, ImageLoader  # noqa: E402
from st_plugins.chroma import open_collection  # noqa: E402
from st_plugins.chroma._collection import is_multimodal  # noqa: E402
from st_plugins.errors import InputTypeError, InputValueError  # noqa: E402
from st_plugins.indexing import index_images  # noqa: E402
from tests import factories  # noqa: E402
from tests.image_files import write_images  # noqa: E402

TOL = 1e-5
REPO = Path(__file__).resolve().parents[2]
QUERIES = ["a red square", "a photo of a cat", "a handwritten digit seven"]
RGB_FILES = ["blue.jpeg", "green.jpg", "grey.png", "purple.png", "red.png"]  # Chroma's own loader reads these as is


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    return {p.name: p for p in write_images(tmp_path_factory.mktemp("images"))}


@pytest.fixture(scope="module")
def ef(clip_dir):
    return ChromaMultimodalEmbeddingFunction(clip_dir, device="cpu")


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _oracle_images(clip_oracle, paths) -> np.ndarray:
    return clip_oracle.encode([str(p) for p in paths])  # sentence-transformers reads each path itself


def _ranking(query: np.ndarray, corpus: np.ndarray, ids: list[str]) -> tuple[list[str], np.ndarray]:
    """Ids by the oracle's cosine similarity, best first, and the cosine distances Chroma should report."""
    sims = corpus @ query / (np.linalg.norm(corpus, axis=1) * np.linalg.norm(query))
    order = np.argsort(-sims, kind="stable")
    return [ids[i] for i in order], 1 - sims[order]


def test_chroma_multimodal_is_registered_protocol(ef):
    assert issubclass(ChromaMultimodalEmbeddingFunction, EmbeddingFunction)
    assert known_embedding_functions["st_plugins_multimodal"] is ChromaMultimodalEmbeddingFunction
    assert known_embedding_functions["st_plugins"] is ChromaEmbeddingFunction  # the text function stays itself
    assert not ef.is_legacy() and ef.default_space() == "cosine"
    assert ChromaMultimodalEmbeddingFunction().model_name == "clip-ViT-B-32"  # an image-text default (nothing loaded)


def test_chroma_multimodal_vectors_equal_oracle(ef, clip_oracle, images):
    """Texts, Chroma-loaded images (numpy arrays) and a mixed list, each against the oracle per modality."""
    arrays = ChromaImageLoader()([str(images[n]) for n in RGB_FILES])
    got_images, got_texts = np.stack(ef(arrays)), np.stack(ef(QUERIES))
    assert got_images.dtype == np.float32 and got_images.shape == (len(RGB_FILES), 24)
    np.testing.assert_allclose(got_images, _oracle_images(clip_oracle, [images[n] for n in RGB_FILES]), atol=TOL, rtol=0)
    np.testing.assert_allclose(got_texts, clip_oracle.encode(QUERIES), atol=TOL, rtol=0)
    np.testing.assert_allclose(np.stack(ef.embed_query(QUERIES)), got_texts, atol=TOL, rtol=0)  # no prompts here
    mixed = np.stack(ef([QUERIES[0], arrays[0], arrays[1], QUERIES[1]]))
    np.testing.assert_allclose(mixed, np.stack([got_texts[0], got_images[0], got_images[1], got_texts[1]]), atol=1e-6)


def test_chroma_multimodal_image_loader_reads_every_file_as_the_oracle(clip_oracle, images, ef):
    """Ours gives RGB arrays for RGBA, grey and JPEG files too; Chroma's gives an RGBA file 4 channels (refused)."""
    paths = sorted(images.values())
    arrays = ImageLoader()([str(p) for p in paths] + [None])
    assert arrays[-1] is None and all(a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 for a in arrays[:-1])
    np.testing.assert_allclose(np.stack(ef(arrays[:-1])), _oracle_images(clip_oracle, paths), atol=TOL, rtol=0)
    rgba = ChromaImageLoader()([str(images["yellow.png"])])
    assert rgba[0].shape[2] == 4
    with pytest.raises(InputValueError, match=r"4 channels: drop the alpha channel"):
        ef(rgba)
    with pytest.raises(InputValueError, match=r"`uris\[1\]`: the image file .*missing\.png.* does not exist"):
        ImageLoader()([str(paths[0]), str(paths[0].with_name("missing.png"))])


def test_chroma_multimodal_config_round_trips(ef, clip_dir):
    full = ChromaMultimodalEmbeddingFunction(clip_dir, device="cpu", normalize_embeddings=True, truncate_dim=8,
                                             prompts={"query": "a photo of "}, batch_size=2)
    config = full.get_config()
    assert config["model_name"] == str(clip_dir) and config["truncate_dim"] == 8
    rebuilt = ChromaMultimodalEmbeddingFunction.build_from_config(config)
    assert type(rebuilt) is ChromaMultimodalEmbeddingFunction and rebuilt.get_config() == config
    image = [np.full((20, 20, 3), 200, dtype=np.uint8)]
    np.testing.assert_array_equal(np.stack(rebuilt(image)), np.stack(full(image)))
    assert rebuilt(image)[0].shape == (8,) and abs(np.linalg.norm(rebuilt(image)[0]) - 1) < 1e-5
    # the query prompt reaches texts only
    assert not np.allclose(rebuilt.embed_query(["cat"])[0], rebuilt(["cat"])[0])
    np.testing.assert_array_equal(rebuilt.embed_query(image)[0], rebuilt(image)[0])
    with pytest.raises(InputValueError, match=r"Cannot change \['truncate_dim'\]"):
        full.validate_config_update(config, {**config, "truncate_dim": 4})


@pytest.mark.parametrize("bad, error, pattern", [
    ([], InputValueError, r"non-empty list"),
    (None, InputTypeError, r"`input` must be a list of documents .*got NoneType"),
    ("a text", InputTypeError, r"got str\. Wrap a single one in a list"),
    (np.zeros((8, 8, 3), np.uint8), InputTypeError, r"got ndarray\. Wrap a single one in a list"),
    (["ok", 3], InputTypeError, r"`input\[1\]` must be a str \(a document\) or an image"),
    ([np.zeros((8, 8, 3), np.float32)], InputTypeError, r"`inputs\[0\]` must be a uint8 array"),
])
def test_chroma_multimodal_bad_input_raises_typed_errors(ef, bad, error, pattern):
    for call in (ef, ef.embed_query):
        with pytest.raises(error, match=pattern):
            call(bad)


def test_chroma_multimodal_text_model_says_it_has_no_image_tower(tiny_bi_dir):
    text_only = ChromaMultimodalEmbeddingFunction(tiny_bi_dir, device="cpu")
    assert len(text_only(["a text"])[0]) == 32
    with pytest.raises(InputValueError, match=r"has no image tower \(it embeds text only\)"):
        text_only([np.zeros((8, 8, 3), np.uint8)])


def _fill(collection, images: dict[str, Path], names: list[str]) -> None:
    collection.add(ids=names, uris=[str(images[n]) for n in names], metadatas=[{"file": n} for n in names])
    collection.add(ids=["text-0"], documents=["a red square on a white page"])


def _check_queries(collection, clip_oracle, images: dict[str, Path], names: list[str], query_uris: bool = True) -> dict:
    """text->image and image->image answers equal the oracle's ranking (ids and cosine distances)."""
    corpus = np.vstack([_oracle_images(clip_oracle, [images[n] for n in names]), clip_oracle.encode(["a red square on a white page"])])
    ids = [*names, "text-0"]
    answers = {}
    for query in QUERIES:
        found = collection.query(query_texts=[query], n_results=len(ids), include=["distances", "uris"])
        want_ids, want_dist = _ranking(clip_oracle.encode(query), corpus, ids)
        assert found["ids"][0] == want_ids, query
        np.testing.assert_allclose(found["distances"][0], want_dist, atol=1e-5)
        assert found["uris"][0][want_ids.index(names[0])] == str(images[names[0]])
        answers[query] = found["ids"][0]
    red = np.asarray(Image.open(images["red.png"]))
    by_image = collection.query(query_images=[red], n_results=3, include=["distances"])
    assert by_image["ids"][0][0] == "red.png" and abs(by_image["distances"][0][0]) < 1e-5
    want_ids, want_dist = _ranking(_oracle_images(clip_oracle, [images["red.png"]])[0], corpus, ids)
    assert by_image["ids"][0] == want_ids[:3]
    np.testing.assert_allclose(by_image["distances"][0], want_dist[:3], atol=1e-5)
    if query_uris:
        by_uri = collection.query(query_uris=[str(images["purple.png"])], n_results=1)
        assert by_uri["ids"][0] == ["purple.png"]
    answers["image"] = by_image["ids"][0]
    return answers


def test_chroma_multimodal_embedded_collection_text_and_image_queries(tmp_path, ef, clip_oracle, images):
    client = chromadb.PersistentClient(path=str(tmp_path))
    collection = client.create_collection("imgs", embedding_function=ef, data_loader=ChromaImageLoader())
    _fill(collection, images, RGB_FILES)
    stored = collection.get(ids=RGB_FILES, include=["embeddings", "uris"])
    np.testing.assert_allclose(np.asarray(stored["embeddings"]), _oracle_images(clip_oracle, [images[n] for n in RGB_FILES]),
                               atol=TOL, rtol=0)
    assert stored["uris"] == [str(images[n]) for n in RGB_FILES]
    assert collection.configuration_json["embedding_function"] == {"type": "known", "name": "st_plugins_multimodal",
                                                                  "config": ef.get_config()}
    _check_queries(collection, clip_oracle, images, RGB_FILES)
    data = collection.get(ids=["red.png"], include=["data"])["data"]
    np.testing.assert_array_equal(data[0], np.asarray(Image.open(images["red.png"])))


def test_chroma_multimodal_bad_file_writes_nothing(tmp_path, ef, images):
    collection = chromadb.PersistentClient(path=str(tmp_path)).create_collection(
        "bad", embedding_function=ef, data_loader=ImageLoader())
    with pytest.raises(InputValueError, match=r"`uris\[1\]`: the image file .* does not exist"):
        collection.add(ids=["a", "b"], uris=[str(images["red.png"]), str(tmp_path / "nope.png")])
    assert collection.count() == 0


REOPEN = textwrap.dedent("""
    import json, sys, chromadb, numpy as np
    from chromadb.utils.data_loaders import ImageLoader
    from PIL import Image
    import st_plugins.chroma  # registers the functions; no function is passed to get_collection
    from st_plugins.core.cache import load_counts
    path, queries, red, purple = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    collection = chromadb.PersistentClient(path=path).get_collection("imgs", data_loader=ImageLoader())
    answers = {q: collection.query(query_texts=[q], n_results=6)["ids"][0] for q in queries}
    answers["image"] = collection.query(query_images=[np.asarray(Image.open(red))], n_results=3)["ids"][0]
    answers["uri"] = collection.query(query_uris=[purple], n_results=1)["ids"][0]
    ef = collection.configuration["embedding_function"]
    print(json.dumps({"answers": answers, "loads": list(load_counts().values()), "ef": type(ef).__name__}))
""")


def test_chroma_multimodal_fresh_process_reopens_without_function(tmp_path, ef, clip_oracle, images):
    collection = chromadb.PersistentClient(path=str(tmp_path)).create_collection(
        "imgs", embedding_function=ef, data_loader=ChromaImageLoader())
    _fill(collection, images, RGB_FILES)
    answers = _check_queries(collection, clip_oracle, images, RGB_FILES)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", REOPEN, str(tmp_path), json.dumps(QUERIES), str(images["red.png"]),
                           str(images["purple.png"])], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply["ef"] == "ChromaMultimodalEmbeddingFunction" and reply["loads"] == [1]
    assert {q: reply["answers"][q] for q in QUERIES} == {q: answers[q] for q in QUERIES}
    assert reply["answers"]["image"] == answers["image"] and reply["answers"]["uri"] == ["purple.png"]


def test_chroma_multimodal_server_text_and_image_queries(chroma_server, ef, clip_oracle, images):
    host, port = chroma_server
    name = _unique("imgs")
    collection = chromadb.HttpClient(host=host, port=port).create_collection(
        name, embedding_function=ef, data_loader=ChromaImageLoader())
    _fill(collection, images, RGB_FILES)
    answers = _check_queries(collection, clip_oracle, images, RGB_FILES)
    reopened = chromadb.HttpClient(host=host, port=port).get_collection(name, data_loader=ChromaImageLoader())
    assert reopened.configuration_json["embedding_function"]["name"] == "st_plugins_multimodal"
    assert _check_queries(reopened, clip_oracle, images, RGB_FILES) == answers


def test_chroma_open_collection_makes_image_collections_for_image_models(tmp_path, clip_dir, clip_oracle, images):
    """open_collection picks the multimodal function for a CLIP and attaches our ImageLoader (RGBA files too)."""
    names = sorted(images)
    made = open_collection(tmp_path, "imgs", model=str(clip_dir), device="cpu", create=True)
    assert is_multimodal(made) and isinstance(made._data_loader, ImageLoader)
    result = index_images(made, [str(images[n]) for n in names], ids=names, show_progress_bar=False)
    assert (result.added, result.skipped, result.total) == (len(names), 0, len(names))
    again = index_images(made, [str(images[n]) for n in names], ids=names, show_progress_bar=False)
    assert (again.added, again.skipped) == (0, len(names))
    for reopened in (open_collection(tmp_path, "imgs"), open_collection(tmp_path, "imgs", device="cpu")):
        assert is_multimodal(reopened)
        assert reopened.query(query_uris=[str(images["yellow.png"])], n_results=1)["ids"][0] == ["yellow.png"]
    stored = made.get(ids=names, include=["embeddings"])
    np.testing.assert_allclose(np.asarray(stored["embeddings"]), _oracle_images(clip_oracle, [images[n] for n in names]),
                               atol=TOL, rtol=0)
    text = open_collection(tmp_path, "texts", model=str(factories.st_folder()), device="cpu", create=True)
    assert not is_multimodal(text) and text._data_loader is None
    with pytest.raises(InputValueError, match=r"Cannot change \['model_name'\]"):
        open_collection(tmp_path, "imgs", model=str(factories.st_folder()))


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"uris": []}, InputValueError, "non-empty list of image paths"),
    ({"uris": ["a.png", 3]}, InputTypeError, r"`uris\[1\]` must be a str"),
    ({"uris": ["a.png"], "ids": ["x", "y"]}, InputValueError, "one id per text"),
])
def test_index_images_bad_arguments_write_nothing(tmp_path, ef, kwargs, error, pattern):
    collection = chromadb.PersistentClient(path=str(tmp_path)).create_collection(
        "bad", embedding_function=ef, data_loader=ImageLoader())
    with pytest.raises(error, match=pattern):
        index_images(collection, show_progress_bar=False, **kwargs)
    assert collection.count() == 0


@pytest.mark.parametrize("layout", ["legacy", "plain", "dual-encoder"])
def test_chroma_multimodal_other_layouts_equal_oracle(layout, images):
    """The function serves every folder layout the core loads (the digits recipe saves a dual encoder)."""
    folder = factories.tiny_dual_encoder() if layout == "dual-encoder" else factories.tiny_clip(layout)
    layout_oracle = st.SentenceTransformer(str(folder), device="cpu")
    layout_ef = ChromaMultimodalEmbeddingFunction(folder, device="cpu")
    arrays = ImageLoader()([str(images[n]) for n in sorted(images)])
    np.testing.assert_allclose(np.stack(layout_ef(arrays)), _oracle_images(layout_oracle, sorted(images.values())),
                               atol=TOL, rtol=0)
    np.testing.assert_allclose(np.stack(layout_ef.embed_query(QUERIES)), layout_oracle.encode_query(QUERIES),
                               atol=TOL, rtol=0)
