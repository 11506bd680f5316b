"""The artifact cache (content hash + library version), dispatch rules and thread settings, on tiny models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from st_plugins import SentenceTransformer
from st_plugins.core.backends import check_backend, store
from st_plugins.errors import InputValueError
from tests.conftest import SENTENCES

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture
def tiny_folder(make_st_folder, tmp_path):
    """A private copy of a tiny sentence-transformers folder (tests may edit it)."""
    return shutil.copytree(make_st_folder(), tmp_path / "tiny")


def _torch_vectors(folder, texts=SENTENCES):
    return SentenceTransformer(str(folder), device="cpu", backend="torch").encode(texts)


def test_backends_onnx_matches_torch_and_is_cached(tmp_home, tiny_folder):
    model = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    got = model.encode(SENTENCES, batch_size=3)
    assert np.abs(got - _torch_vectors(tiny_folder)).max() <= 1e-5
    digest = store.content_hash(tiny_folder)
    assert model._fast.artifact == store.artifact_dir(digest, "bi-onnx")
    assert store.is_complete(model._fast.artifact)
    assert model._fast.artifact.is_relative_to(tmp_home)


_SECOND_PROCESS = """
import sys
from st_plugins.core.backends import dispatch
calls = []
real = dispatch.build_artifact
dispatch.build_artifact = lambda *a, **k: calls.append(1) or real(*a, **k)
from st_plugins import SentenceTransformer
m = SentenceTransformer(sys.argv[1], device="cpu", backend="onnx")
m.encode(["a sentence"])
print(len(calls), m._fast.artifact)
"""


def _second_process(folder) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _SECOND_PROCESS, str(folder)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    builds, path = done.stdout.strip().splitlines()[-1].split(" ", 1)
    return int(builds), path


def test_backends_artifact_reused_by_another_process(tmp_home, tiny_folder):
    first = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    first.encode(["a sentence"])
    assert _second_process(tiny_folder) == (0, str(first._fast.artifact))


def test_backends_changed_folder_rebuilds_and_drops_old(tmp_home, tiny_folder):
    model = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    model.encode(["a sentence"])
    old = model._fast.artifact
    config = tiny_folder / "config_sentence_transformers.json"
    config.write_text(config.read_text() + "\n")
    builds, path = _second_process(tiny_folder)
    assert builds == 1 and path != str(old)
    assert not old.exists()


def test_backends_new_library_version_or_broken_file_rebuilds(tmp_home, tiny_folder, monkeypatch):
    SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx").encode(["a"])
    old = store.artifact_dir(store.content_hash(tiny_folder), "bi-onnx")
    monkeypatch.setattr(store, "FORMAT", store.FORMAT + 1)
    model = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    model.encode(["a"])
    assert model._fast.artifact != old and not old.exists()  # the stale sibling is removed
    with open(model._fast.artifact / "model.onnx", "r+b") as fh:
        fh.truncate(100)
    assert not store.is_complete(model._fast.artifact)
    again = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    assert np.abs(again.encode(SENTENCES) - _torch_vectors(tiny_folder)).max() <= 1e-5


def test_backends_weights_changed_in_memory_are_never_served_stale(tmp_home, tiny_folder):
    import torch

    auto = SentenceTransformer(str(tiny_folder), device="cpu")
    explicit = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    reference = SentenceTransformer(str(tiny_folder), device="cpu", backend="torch")
    for m in (auto, explicit):
        m.encode(["warm the cache"])
    with torch.no_grad():
        for m in (auto, explicit, reference):
            m.auto_model.embeddings.word_embeddings.weight.mul_(1.5)
    want = reference.encode(SENTENCES)
    assert np.abs(auto.encode(SENTENCES) - want).max() <= 1e-5  # auto: back to torch
    assert auto._fast._rejected is not None
    assert np.abs(explicit.encode(SENTENCES) - want).max() <= 1e-5  # onnx: re-exported to a temp folder
    assert not explicit._fast.artifact.is_relative_to(tmp_home)


def test_backends_threads_follow_torch_setting(tmp_home, tiny_folder):
    import torch

    model = SentenceTransformer(str(tiny_folder), device="cpu", backend="onnx")
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model.encode(SENTENCES, batch_size=4)
            runner = model._fast._runner
            workers, intra = runner._key
            assert workers * intra == threads  # never more threads than the user allows
            assert runner.session.get_session_options().intra_op_num_threads == intra
    finally:
        torch.set_num_threads(before)


def test_backends_bad_names_and_devices_raise(tiny_folder):
    with pytest.raises(InputValueError, match="`backend` must be one of"):
        SentenceTransformer(str(tiny_folder), device="cpu", backend="fast")
    from st_plugins.core.backends.dispatch import FastPath

    with pytest.raises(InputValueError, match="CPU only"):
        FastPath("int8", "bi", tiny_folder, "cuda")
    assert check_backend("bfloat16") == "bf16"


def test_backends_import_stays_light():
    code = ("import sys, st_plugins.core.backends, st_plugins.core.backends.store, st_plugins.core.backends.lean; "
            "print(sorted(m for m in ('torch', 'transformers', 'onnxruntime', 'onnx') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr
