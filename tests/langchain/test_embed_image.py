"""LangChainEmbeddings on an image-text model: embed_image(uris) as LangChain's OpenCLIPEmbeddings offers, texts
through embed_documents/embed_query, langchain_chroma's add_images / similarity_search_by_image, and LangChain's
standard suites on the tiny CLIP. Vectors against sentence-transformers on the same folder (1e-5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("langchain_core")
st = pytest.importorskip("sentence_transformers")
from langchain_tests.integration_tests import EmbeddingsIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import EmbeddingsUnitTests  # noqa: E402

from st_plugins.errors import InputTypeError, InputValueError  # noqa: E402
from st_plugins.langchain import LangChainEmbeddings  # noqa: E402
from tests import factories  # noqa: E402
from tests.image_files import write_images  # noqa: E402

TOL = 1e-5
TEXTS = ["a red square", "a photo of a cat", "", "a handwritten digit seven"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> list[Path]:
    return write_images(tmp_path_factory.mktemp("lc_images"))


@pytest.fixture
def emb(clip_dir):
    return LangChainEmbeddings(model=str(clip_dir), device="cpu")


def test_langchain_embed_image_matches_oracle(emb, clip_oracle, paths):
    got = emb.embed_image(uris=[str(p) for p in paths])
    assert type(got) is list and len(got) == len(paths) and all(type(v) is float for v in got[0])
    np.testing.assert_allclose(np.array(got), clip_oracle.encode([str(p) for p in paths]), atol=TOL, rtol=0)
    np.testing.assert_allclose(emb.embed_image(paths[::-1]), np.array(got)[::-1], atol=1e-6)  # Path objects, order
    assert emb.embed_image([]) == []


def test_langchain_image_model_texts_match_oracle(emb, clip_oracle):
    np.testing.assert_allclose(emb.embed_documents(TEXTS), clip_oracle.encode_document(TEXTS), atol=TOL, rtol=0)
    np.testing.assert_allclose(emb.embed_query(TEXTS[0]), clip_oracle.encode_query(TEXTS[0]), atol=TOL, rtol=0)


def test_langchain_embed_image_normalizes_like_the_texts(clip_dir, paths):
    normed = LangChainEmbeddings(model=str(clip_dir), device="cpu", normalize_embeddings=True, batch_size=1)
    vectors = np.array(normed.embed_image([str(p) for p in paths]))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_langchain_embed_image_text_model_has_no_image_tower(tiny_bi_dir, paths):
    emb = LangChainEmbeddings(model=str(tiny_bi_dir), device="cpu")
    with pytest.raises(InputValueError, match=r"embed_image needs an image-text model .*has no image tower "
                                              r"\(it embeds text only\)"):
        emb.embed_image([str(paths[0])])


@pytest.mark.parametrize("uris, error, match", [
    ("one.png", InputTypeError, r"`uris` must be a list of image paths; got str"),
    ([3], InputTypeError, r"`uris\[0\]` must be the path of an image file \(a str\); got int"),
    (["{ok}", "{missing}"], InputValueError, r"`uris\[1\]`: the image file .*missing\.png.* does not exist"),
    (["{broken}"], InputValueError, r"`uris\[0\]`: .*broken\.png.* is not a readable image"),
], ids=["bare-str", "int", "missing", "broken"])
def test_langchain_embed_image_bad_uris_raise_typed_errors(emb, paths, tmp_path, uris, error, match):
    (tmp_path / "broken.png").write_text("not an image")
    where = {"ok": str(paths[0]), "missing": str(tmp_path / "missing.png"), "broken": str(tmp_path / "broken.png")}
    uris = [u.format(**where) if isinstance(u, str) else u for u in uris] if isinstance(uris, list) else uris
    with pytest.raises(error, match=match):
        emb.embed_image(uris)


async def test_langchain_aembed_image_matches_sync(emb, paths):
    uris = [str(p) for p in paths]
    np.testing.assert_allclose(await emb.aembed_image(uris), emb.embed_image(uris), atol=1e-6)


def test_langchain_chroma_add_images_and_search_by_text_and_image(emb, clip_oracle, paths):
    """langchain_chroma.Chroma stores images through embed_image and searches them by text and by image."""
    lc_chroma = pytest.importorskip("langchain_chroma")
    import chromadb

    client = chromadb.EphemeralClient(settings=chromadb.config.Settings(anonymized_telemetry=False))
    import uuid

    store = lc_chroma.Chroma(collection_name=f"lc-images-{uuid.uuid4().hex[:8]}", embedding_function=emb, client=client,
                             collection_metadata={"hnsw:space": "cosine"})
    ids = store.add_images(uris=[str(p) for p in paths], metadatas=[{"file": p.name} for p in paths])
    assert len(ids) == len(paths)
    by_image = store.similarity_search_by_image(uri=str(paths[3]), k=2)
    assert by_image[0].metadata["file"] == paths[3].name
    corpus = clip_oracle.encode([str(p) for p in paths])
    for text in TEXTS[:2] + TEXTS[3:]:
        query = clip_oracle.encode(text)
        sims = corpus @ query / (np.linalg.norm(corpus, axis=1) * np.linalg.norm(query))
        found = store.similarity_search_with_score(text, k=len(paths))
        assert [doc.metadata["file"] for doc, _ in found] == [paths[i].name for i in np.argsort(-sims, kind="stable")]
        np.testing.assert_allclose([score for _, score in found], np.sort(1 - sims), atol=1e-5)


class TestLangChainImageModelStandardUnit(EmbeddingsUnitTests):
    """LangChain's standard unit suite, on the tiny random CLIP (texts through its text tower)."""

    @property
    def embeddings_class(self):
        return LangChainEmbeddings

    @property
    def embedding_model_params(self):
        return {"model": str(factories.tiny_clip("current")), "device": "cpu"}


class TestLangChainImageModelStandardIntegration(EmbeddingsIntegrationTests):
    """LangChain's standard integration suite, on the tiny random CLIP."""

    @property
    def embeddings_class(self):
        return LangChainEmbeddings

    @property
    def embedding_model_params(self):
        return {"model": str(factories.tiny_clip("current")), "device": "cpu"}
