"""The cross-encoder's ONNX path: same scores as torch (<= 1e-5) on tiny random models of several architectures."""

from __future__ import annotations

import numpy as np
import pytest

from st_plugins import CrossEncoder
from st_plugins.errors import InputValueError
from tests.conftest import SENTENCES

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

PAIRS = [(q, d) for q in SENTENCES[:3] for d in SENTENCES] + [("word " * 300, "word " * 300)]


@pytest.mark.parametrize("arch, num_labels", [("bert", 1), ("distilbert", 3), ("roberta", 1)])
def test_backends_cross_encoder_onnx_matches_torch(tmp_home, make_cross_folder, arch, num_labels):
    folder = make_cross_folder(arch, num_labels)
    fast = CrossEncoder(str(folder), device="cpu", backend="onnx")
    reference = CrossEncoder(str(folder), device="cpu", backend="torch")
    for batch_size in (1, 5, 32):
        got, want = fast.predict(PAIRS, batch_size=batch_size), reference.predict(PAIRS, batch_size=batch_size)
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-5
    assert fast.graph is not None and fast.graph.folder.is_relative_to(tmp_home)
    if num_labels == 1:
        hits = fast.rank(SENTENCES[0], SENTENCES[1:], return_documents=True)
        assert [h["corpus_id"] for h in hits] == [h["corpus_id"] for h in reference.rank(SENTENCES[0], SENTENCES[1:])]


def test_backends_cross_encoder_has_no_int8(make_cross_folder):
    with pytest.raises(InputValueError, match="`backend` must be one of"):
        CrossEncoder(str(make_cross_folder("bert", 1)), device="cpu", backend="int8")
