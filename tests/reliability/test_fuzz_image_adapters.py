"""Fuzzed images for the adapters: the Chroma multimodal function, the scikit-learn image transformer and
LangChain's ``embed_image``, on a tiny random CLIP (:func:`tests.factories.tiny_clip`).

Property: valid images (uint8 arrays of any size, grey or RGB, mixed with texts where the host allows it) give
sentence-transformers' vectors, one modality per oracle call; anything else raises a typed ``StPluginsError``
naming the index at fault (the adapter's own name for it, or the core's ``inputs[i]``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import factories
from tests.reliability.strategies import TOL, assert_names, budget, lists_with_one_bad_item, outcome, valid_texts

pytest.importorskip("chromadb")
pytest.importorskip("sklearn")
pytest.importorskip("langchain_core")
Image = pytest.importorskip("PIL.Image")
from st_plugins.chroma import ChromaMultimodalEmbeddingFunction  # noqa: E402
from st_plugins.langchain import LangChainEmbeddings  # noqa: E402
from st_plugins.sklearn import ImageEmbeddingTransformer  # noqa: E402

_files = itertools.count()


@st.composite
def images(draw) -> np.ndarray:
    """A uint8 image ``(h, w)`` or ``(h, w, 3)``, 1-64 pixels a side, from a drawn seed."""
    h, w, grey, seed = draw(st.integers(1, 64)), draw(st.integers(1, 64)), draw(st.booleans()), draw(st.integers(0, 99))
    return np.random.default_rng(seed).integers(0, 256, (h, w) if grey else (h, w, 3), dtype=np.uint8)


bad_images = st.sampled_from([np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32), np.zeros((0, 5), np.uint8),
                              np.zeros((2, 8, 8, 3), np.uint8), np.zeros(5, np.uint8), np.zeros((8, 8, 2), np.uint8),
                              None, 3, 1.5, b"png", [1, 2], {"image": 1}])


@pytest.fixture(scope="module")
def clip():
    """``(folder, oracle)`` on the tiny CLIP."""
    from sentence_transformers import SentenceTransformer as Oracle

    folder = factories.tiny_clip("current")
    return folder, Oracle(str(folder), device="cpu")


def _oracle(oracle, items: list) -> np.ndarray:
    """The oracle's vectors for a mixed list, one modality per call, in input order."""
    out = np.zeros((len(items), oracle.get_embedding_dimension()), dtype=np.float32)
    texts = [i for i, x in enumerate(items) if isinstance(x, str)]
    pictures = [i for i, x in enumerate(items) if not isinstance(x, str)]
    if texts:
        out[texts] = oracle.encode([items[i] for i in texts])
    if pictures:
        out[pictures] = oracle.encode([Image.fromarray(items[i]) for i in pictures])
    return out


@budget(0.6)
@given(items=st.lists(st.one_of(images(), valid_texts.filter(lambda t: len(t) < 1000)), min_size=1, max_size=5))
def test_fuzz_chroma_multimodal_matches_oracle(clip, items):
    folder, oracle = clip
    ef = ChromaMultimodalEmbeddingFunction(folder, device="cpu", batch_size=2)
    np.testing.assert_allclose(np.stack(ef(items)), _oracle(oracle, items), **TOL)


@budget(0.6)
@given(case=lists_with_one_bad_item(good=images(), bad=st.one_of(bad_images, st.just("\ud800"))), query=st.booleans())
def test_fuzz_chroma_multimodal_bad_item_names_its_index(clip, case, query):
    items, index = case
    ef = ChromaMultimodalEmbeddingFunction(clip[0], device="cpu")
    _, error = outcome(lambda: (ef.embed_query if query else ef)(items))
    assert_names(error, f"`input[{index}]`", f"`inputs[{index}]`")


@budget(0.5)
@given(items=st.lists(images(), min_size=1, max_size=5), batch_size=st.integers(1, 4))
def test_fuzz_sklearn_image_transformer_matches_oracle(clip, items, batch_size):
    folder, oracle = clip
    est = ImageEmbeddingTransformer(model=str(folder), device="cpu", batch_size=batch_size).fit(items)
    np.testing.assert_allclose(est.transform(items), _oracle(oracle, items), **TOL)


@budget(0.5)
@given(case=lists_with_one_bad_item(good=images(), bad=st.one_of(bad_images, st.just("missing.png"))))
def test_fuzz_sklearn_image_transformer_bad_item_names_its_index(clip, case):
    items, index = case
    est = ImageEmbeddingTransformer(model=str(clip[0]), device="cpu")
    _, error = outcome(lambda: est.fit(items).transform(items))
    assert_names(error, f"`X[{index}]`", f"`inputs[{index}]`", "`X`")  # `X`: a row of numbers, read as columns


@budget(0.4)
@given(case=lists_with_one_bad_item(good=images(), bad=st.sampled_from(["missing", "broken", "text", None, 7])))
def test_fuzz_langchain_embed_image_files(clip, tmp_path_factory, case):
    """Files written from drawn images embed as the oracle reads them; a missing, broken or non-path uri is named."""
    folder, oracle = clip
    root = tmp_path_factory.mktemp(f"lc_fuzz{next(_files)}")
    items, index = case
    uris = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            Image.fromarray(item).save(root / f"{i}.png")
            uris.append(str(root / f"{i}.png"))
        elif item == "broken":
            (root / "broken.png").write_bytes(b"\x89PNG not really")
            uris.append(str(root / "broken.png"))
        elif item == "text":
            (root / "note.png").write_text("hello")
            uris.append(str(root / "note.png"))
        else:
            uris.append(str(root / "missing.png") if item == "missing" else item)
    emb = LangChainEmbeddings(model=str(folder), device="cpu")
    _, error = outcome(lambda: emb.embed_image(uris))
    assert_names(error, f"`uris[{index}]`")
    good = [u for u in uris[:index] + uris[index + 1:]]
    if good:
        np.testing.assert_allclose(emb.embed_image(good), oracle.encode(good), **TOL)
