"""The graph cache (content hash + library version), the first build in a child process, engine rules and
thread settings, on tiny models. Subprocesses prove which processes import torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from st_plugins import SentenceTransformer
from st_plugins.core.backends import check_backend
from st_plugins.core.runtime import store
from st_plugins.errors import InputValueError
from tests.conftest import SENTENCES


@pytest.fixture
def tiny_folder(make_st_folder, tmp_path):
    """A private copy of a tiny sentence-transformers folder (tests may edit it)."""
    return shutil.copytree(make_st_folder(), tmp_path / "tiny")


def _torch_vectors(folder, texts=SENTENCES):
    return SentenceTransformer(str(folder), device="cpu", backend="torch").encode(texts)


_FRESH_PROCESS = """
import json, sys
from st_plugins.core.runtime import graphs
builds, children = [], []
real, real_child = graphs.build_graph_folder, graphs.build_in_child
graphs.build_graph_folder = lambda *a, **k: builds.append(1) or real(*a, **k)
graphs.build_in_child = lambda *a, **k: children.append(1) or real_child(*a, **k)
from st_plugins import SentenceTransformer
m = SentenceTransformer(sys.argv[1], device="cpu", backend=sys.argv[2])
vectors = m.encode(json.loads(sys.argv[3]))
print(json.dumps({"builds": len(builds), "children": len(children), "graph": str(m.graph.folder), "vectors": vectors.tolist(),
                  "heavy": sorted(x for x in ("torch", "transformers") if x in sys.modules)}))
"""


def _fresh_process(folder, backend="auto", texts=SENTENCES, builder="auto") -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
           "ST_PLUGINS_GRAPH_BUILDER": builder}
    done = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, str(folder), backend, json.dumps(texts)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.parametrize("builder", ["safetensors", "export"])
def test_runtime_first_use_builds_once_then_later_processes_start_lean(tmp_home, tiny_folder, builder):
    """Written from the safetensors here, or exported by torch in a child (with a progress message): either way
    the user's process never imports torch, and the next process finds the graph."""
    first, stderr = _fresh_process(tiny_folder, builder=builder)
    assert first["builds"] == 1
    if builder == "export":
        assert first["children"] == 1 and "building the onnx graph" in stderr
    else:
        assert first["children"] == 0
    assert first["heavy"] == []
    digest = store.content_hash(tiny_folder)
    assert first["graph"] == str(store.artifact_dir(digest, "bi-onnx")) and first["graph"].startswith(str(tmp_home))
    second, stderr = _fresh_process(tiny_folder)
    assert second["builds"] == 0 and "building" not in stderr and second["heavy"] == []
    want = _torch_vectors(tiny_folder)
    assert np.abs(np.array(second["vectors"]) - want).max() <= 1e-5


def test_runtime_changed_folder_rebuilds_and_drops_old(tmp_home, tiny_folder):
    model = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    old = model.graph.folder
    config = tiny_folder / "config_sentence_transformers.json"
    config.write_text(config.read_text() + "\n")
    again, _ = _fresh_process(tiny_folder, "onnx", ["a"])
    assert again["builds"] == 1 and again["graph"] != str(old)
    assert not old.exists()


def test_runtime_new_library_version_or_broken_file_rebuilds(tmp_home, tiny_folder, monkeypatch):
    old = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx").graph.folder
    monkeypatch.setattr(store, "FORMAT", store.FORMAT + 1)  # this process only: build here, torch loaded
    model = SentenceTransformer(str(tiny_folder), device="cpu", backend="torch")
    model.backend = "onnx"
    assert model.graph.folder != old and not old.exists()  # the stale sibling is removed
    with open(model.graph.folder / "model.onnx", "r+b") as fh:
        fh.truncate(100)
    assert not store.is_complete(model.graph.folder)
    again = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    assert np.abs(again.encode(SENTENCES) - _torch_vectors(tiny_folder)).max() <= 1e-5


def test_runtime_weights_changed_in_memory_are_never_served_stale(tmp_home, tiny_folder):
    import torch

    auto = SentenceTransformer(str(tiny_folder), device="cpu")
    explicit = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    reference = SentenceTransformer(str(tiny_folder), device="cpu", backend="torch")
    assert auto.graph is not None and "torch" not in type(auto.graph).__module__
    with torch.no_grad():
        for m in (auto, explicit, reference):
            m.auto_model.embeddings.word_embeddings.weight.mul_(1.5)
    want = reference.encode(SENTENCES)
    assert auto.graph is None  # auto: the torch engine, until the folder's weights are back
    assert np.abs(auto.encode(SENTENCES) - want).max() <= 1e-5
    assert np.abs(explicit.encode(SENTENCES) - want).max() <= 1e-5  # onnx: the weights in memory, exported
    assert not explicit.graph.folder.is_relative_to(tmp_home)
    auto.load_state_dict(SentenceTransformer(str(tiny_folder), device="cpu", backend="torch").state_dict())
    assert auto.graph is None  # load_state_dict writes in place: still not trusted, even with equal values


def test_runtime_threads_follow_torch_setting(tmp_home, tiny_folder):
    import torch

    model = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model.encode(SENTENCES, batch_size=4)
            runner = model.graph.runner
            workers, intra = runner._key
            assert workers * intra == threads  # never more threads than the user allows
            assert runner.session.get_session_options().intra_op_num_threads == intra
    finally:
        torch.set_num_threads(before)


def test_runtime_bad_names_and_devices_raise(tiny_folder):
    with pytest.raises(InputValueError, match="`backend` must be one of"):
        SentenceTransformer(str(tiny_folder), device="cpu", backend="fast")
    with pytest.raises(InputValueError, match="CPU only"):
        SentenceTransformer(str(tiny_folder), device="cuda", backend="int8")
    assert check_backend("bfloat16") == "bf16"


def test_runtime_encode_on_another_device_leaves_the_shared_model(tmp_home, tiny_folder):
    model = SentenceTransformer(str(tiny_folder), device="cpu", backend="torch")
    got = model.encode(SENTENCES, device="cpu:0")
    assert model._device == "cpu" and str(next(model.parameters()).device) == "cpu"
    assert np.abs(got - _torch_vectors(tiny_folder)).max() <= 1e-6


def test_runtime_modules_import_no_torch():
    code = ("import sys, st_plugins.core.backends, st_plugins.core.runtime.graphs, st_plugins.core.runtime.engines, "
            "st_plugins.core.bi_encoder, st_plugins.core.cross_encoder, st_plugins.core.cache; "
            "print(sorted(m for m in ('torch', 'transformers', 'onnx', 'tqdm') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_runtime_int8_build_leaves_logging_alone(tmp_home, tiny_folder):
    import logging

    root = logging.getLogger()
    handlers, filters, disabled = list(root.handlers), list(root.filters), root.manager.disable
    model = SentenceTransformer(str(tiny_folder), device="cpu", backend="torch")
    model.backend = "int8"  # torch is loaded: the quantizer runs in this process
    assert model.graph is not None and model.graph.meta["variant"] == "bi-int8"
    assert (list(root.handlers), list(root.filters), root.manager.disable) == (handlers, filters, disabled)
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    other = logging.getLogger("st_plugins.test")
    other.addHandler(handler)
    other.warning("still heard")
    other.removeHandler(handler)
    assert [r.getMessage() for r in seen] == ["still heard"]


def test_runtime_one_session_per_graph_across_encoders(tmp_home, tiny_folder):
    plain = SentenceTransformer(str(tiny_folder), device="cpu")
    truncated = SentenceTransformer(str(tiny_folder), device="cpu", truncate_dim=8, prompts={"q": "query: "})
    assert plain.graph is truncated.graph and plain.graph.runner is truncated.graph.runner
    assert truncated.encode(SENTENCES).shape == (len(SENTENCES), 8)
