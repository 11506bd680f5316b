"""A corrupted graph in the disk cache is detected and rebuilt, never served.

The corruption is one ONNX onnxruntime still loads (random bytes over weights, same size): only the
SHA-256 recorded at publish time tells it apart, so the last test shows it would give wrong vectors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from st_plugins import SentenceTransformer
from st_plugins.core.runtime import store
from st_plugins.core.runtime.graphs import Graph
from tests.conftest import SENTENCES

_FRESH = """
import json, sys
from st_plugins.core.runtime import graphs
builds = []
real = graphs.build_graph_folder
graphs.build_graph_folder = lambda *a, **k: builds.append(1) or real(*a, **k)
from st_plugins import SentenceTransformer
m = SentenceTransformer(sys.argv[1], device="cpu", backend="onnx")
print(json.dumps({"builds": len(builds), "graph": str(m.graph.folder), "vectors": m.encode(json.loads(sys.argv[2])).tolist()}))
"""


@pytest.fixture(scope="module")
def _built(make_st_folder, tmp_path_factory):
    """A tiny model and a cache home holding its onnx graph, built once for this file."""
    root = tmp_path_factory.mktemp("graph_cache")
    folder = shutil.copytree(make_st_folder(), root / "tiny")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ST_PLUGINS_HOME", str(root / "home"))
        graph = SentenceTransformer(str(folder), device="cpu", backend="onnx").graph.folder
    want = SentenceTransformer(str(folder), device="cpu", backend="torch").encode(SENTENCES)
    return folder, root / "home", graph.relative_to(root / "home"), want


@pytest.fixture
def cached(_built, tmp_path, monkeypatch):
    """``(folder, graph folder, torch vectors)``, the graph in this test's own copy of the cache."""
    folder, home, graph, want = _built
    shutil.copytree(home, tmp_path / "home")
    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path / "home"))
    return folder, tmp_path / "home" / graph, want


def _fresh(folder) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _FRESH, str(folder), json.dumps(SENTENCES)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _scribble(path, keep_mtime=False) -> None:
    """Perturb every float weight of ``path`` in place (same size, still a valid ONNX file)."""
    import onnx
    from onnx import numpy_helper

    before = path.stat()
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for init in onnx.load(str(path)).graph.initializer:
        raw = init.raw_data
        if init.data_type != onnx.TensorProto.FLOAT or len(raw) < 256:
            continue
        at = bytes(data).find(raw)
        assert at >= 0, init.name
        values = numpy_helper.to_array(init).astype(np.float32)
        noisy = values * (1 + 0.5 * rng.standard_normal(values.shape)).astype(np.float32)
        data[at:at + len(raw)] = noisy.tobytes()
    with open(path, "r+b") as fh:
        fh.write(data)
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def test_graph_cache_records_a_hash_per_file(cached):
    _, graph, _ = cached
    meta = store.read_meta(graph)
    assert set(meta["sha256"]) == set(meta["files"]) and "model.onnx" in meta["files"]
    import hashlib

    assert meta["sha256"]["model.onnx"] == hashlib.sha256((graph / "model.onnx").read_bytes()).hexdigest()
    assert store.is_complete(graph)


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["written", "mtime-restored"])
def test_graph_cache_corrupted_graph_is_rebuilt_not_served(cached, keep_mtime):
    folder, graph, want = cached
    _scribble(graph / "model.onnx", keep_mtime)
    assert not store.is_complete(graph)
    if keep_mtime:  # the same path from here on
        return
    fresh = _fresh(folder)
    assert fresh["builds"] == 1 and fresh["graph"] == str(graph)
    assert np.abs(np.array(fresh["vectors"]) - want).max() <= 1e-5
    assert store.is_complete(graph)


def test_graph_cache_corrupted_tokenizer_is_rebuilt(cached):
    folder, graph, want = cached
    path = graph / "tokenizer.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"[CLS]"', '"[CLX]"', 1), encoding="utf-8")
    assert not store.is_complete(graph)
    fresh = _fresh(folder)
    assert fresh["builds"] == 1 and np.abs(np.array(fresh["vectors"]) - want).max() <= 1e-5


def test_graph_cache_copied_cache_is_verified_by_hash_not_rebuilt(cached, tmp_path):
    folder, graph, _ = cached
    copy = shutil.copytree(graph, tmp_path / "copy")  # new inodes and times, same bytes
    assert store.is_complete(copy)  # hashed once, then remembered
    assert json.loads((copy / ".verified.json").read_text()) != json.loads((graph / ".verified.json").read_text())
    assert store.is_complete(copy)


def test_graph_cache_the_corruption_would_give_wrong_vectors(cached, tmp_path):
    """Without the hash check the perturbed graph loads and runs: only the check stops it being served."""
    _, graph, _ = cached
    copy = shutil.copytree(graph, tmp_path / "copy")
    _scribble(copy / "model.onnx")
    assert not store.is_complete(copy)
    good, bad = Graph(graph), Graph(copy)
    tokenizer = good.tokenizer()
    feats = tokenizer.batch(tokenizer.encode(SENTENCES))
    assert np.abs(bad.runner.run(feats) - good.runner.run(feats)).max() > 1e-2
