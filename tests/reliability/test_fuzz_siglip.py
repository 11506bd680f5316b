"""Fuzzed texts and images through a SigLIP model (:func:`tests.factories.tiny_siglip`): its tokenizer is read
from ``spiece.model`` by st_plugins and its texts are padded to the maximum length, so every text must give the
vector sentence-transformers gives with ``processing_kwargs={"text": {"padding": "max_length"}}``, alone or in a
mixed list, at any batch size; anything else raises a typed ``StPluginsError`` naming the index.

Left out, the two known tokenizer differences (see :mod:`st_plugins.core.runtime.sentencepiece`): texts holding
an added token's literal string (``</s>``, ``<unk>``), and decomposed texts (not NFC), which the ``tokenizers``
library's SentencePiece character map normalizes otherwise (huggingface/tokenizers#2116, #2334).
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import factories
from tests.reliability.strategies import TOL, assert_names, budget, lists_with_one_bad_item, outcome, valid_texts

pytest.importorskip("sentencepiece")
Image = pytest.importorskip("PIL.Image")
from st_plugins import SentenceTransformer  # noqa: E402
from tests.reliability.test_fuzz_image_adapters import bad_images, images  # noqa: E402

texts = valid_texts.filter(lambda t: len(t) < 1000 and "</s>" not in t and "<unk>" not in t
                           and unicodedata.is_normalized("NFC", t))


@pytest.fixture(scope="module")
def siglip():
    """``(ours, oracle)`` on the tiny SigLIP, the oracle padding to the maximum length."""
    from sentence_transformers import SentenceTransformer as Oracle

    folder = str(factories.tiny_siglip("plain"))
    oracle = Oracle(folder, device="cpu")
    oracle[0].processing_kwargs = {"text": {"padding": "max_length"}}
    return SentenceTransformer(folder), oracle


@budget(0.6)
@given(items=st.lists(st.one_of(images(), texts), min_size=1, max_size=6), batch_size=st.integers(1, 4))
def test_fuzz_siglip_matches_oracle(siglip, items, batch_size):
    ours, oracle = siglip
    want = np.zeros((len(items), 24), dtype=np.float32)
    for is_text in (True, False):
        idx = [i for i, item in enumerate(items) if isinstance(item, str) == is_text]
        if idx:
            chunk = [items[i] if is_text else Image.fromarray(items[i]).convert("RGB") for i in idx]
            want[idx] = oracle.encode(chunk, batch_size=batch_size)
    np.testing.assert_allclose(ours.encode(items, batch_size=batch_size), want, **TOL)


@budget(0.4)
@given(case=lists_with_one_bad_item(good=st.one_of(images(), texts), bad=st.one_of(bad_images, st.just("\ud800"))))
def test_fuzz_siglip_bad_item_names_its_index(siglip, case):
    ours, _ = siglip
    items, index = case
    _, error = outcome(lambda: ours.encode(items))
    assert_names(error, f"inputs[{index}]")
