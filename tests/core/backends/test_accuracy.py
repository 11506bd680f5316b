"""Accuracy guards of every fast path on real sentences (all-MiniLM-L6-v2, STS test). Not timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import SENTENCES
from tests.core.conftest import min_cosine, shared_model, sts_spearman

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytestmark = pytest.mark.slow


def test_backends_default_is_exact_against_oracle(oracle, sts_sentences):
    texts = SENTENCES + sts_sentences[:300]
    model = shared_model("auto")
    got = model.encode(texts)
    assert model.graph is not None, "the default path should be the runtime's graph here"
    want = oracle.encode(texts, convert_to_numpy=True)
    assert np.abs(got - want).max() <= 1e-5
    assert min_cosine(got, want) >= 0.99999


@pytest.mark.parametrize("backend, cos_floor, spearman_drift", [
    ("onnx", 0.99999, 1e-4),
    ("bf16", 0.9999, 0.002),
    ("int8", 0.99, 0.005),
])
def test_backends_accuracy_guard_on_sts(backend, cos_floor, spearman_drift, sts_test, sts_sentences, fp32_reference):
    got = shared_model(backend).encode(sts_sentences, batch_size=64)
    assert min_cosine(got, fp32_reference) >= cos_floor
    drift = abs(sts_spearman(sts_test, sts_sentences, got) - sts_spearman(sts_test, sts_sentences, fp32_reference))
    assert drift <= spearman_drift
    if backend == "onnx":
        assert np.abs(got - fp32_reference).max() <= 1e-5


_LEAN_SCRIPT = """
import json, sys
import numpy as np
from st_plugins import SentenceTransformer
texts = json.loads(sys.argv[2])
out = SentenceTransformer("all-MiniLM-L6-v2", backend=sys.argv[1]).encode(texts)
np.save(sys.argv[3], out)
print(json.dumps(sorted(m for m in ("torch", "transformers") if m in sys.modules)))
"""


@pytest.mark.parametrize("backend", ["onnx", "int8"])
def test_backends_fresh_process_matches_without_torch(backend, tmp_path, sts_sentences):
    texts = SENTENCES + sts_sentences[:100]
    core = shared_model(backend).encode(texts)  # also makes sure the graph is cached
    import torch

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": str(torch.get_num_threads())}  # same slices per batch (int8 scales are per slice)
    done = subprocess.run([sys.executable, "-c", _LEAN_SCRIPT, backend, json.dumps(texts), str(tmp_path / "v.npy")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []  # neither torch nor transformers imported
    lean = np.load(tmp_path / "v.npy")
    assert np.abs(lean - core).max() <= 1e-5
