"""st_plugins.core.resolve beyond the core's own tests: names from entry points, hub errors kept apart from bugs.

(These sit outside tests/core while the core is being rewritten; they belong next to tests/core/test_loading.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from st_plugins.core import resolve
from st_plugins.errors import ModelNotFoundError
from tests.training.test_named import fake_reranker

ROOT = Path(__file__).resolve().parents[1]


def test_resolve_entry_point_name_without_torch(tmp_path):
    folder = fake_reranker(tmp_path)
    code = ("import json, sys; from st_plugins.core.resolve import resolve_model_path; "
            "path = resolve_model_path('st-plugins/stsb-reranker'); "
            "print(json.dumps([str(path), [m for m in ('torch', 'transformers', 'numpy') if m in sys.modules]]))")
    env = dict(os.environ, ST_PLUGINS_HOME=str(tmp_path), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(done.stdout) == [str(folder), []]


def test_resolve_missing_model_lists_entry_point_names(tmp_path, monkeypatch):
    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        resolve.resolve_model_path("st-plugins/stsb-reranker", cache_folder=tmp_path / "hub")
    message = str(info.value)
    assert "registered name 'st-plugins/stsb-reranker': its package or folder is not available" in message
    assert "hub repo 'st-plugins/stsb-reranker' (revision main, offline, " in message
    offline = message.split("Models that work offline here (pass the name):\n", 1)[1].splitlines()
    listed = {line.split("'")[1]: line for line in offline if line.startswith("  - '")}
    assert {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "st-plugins/stsb-reranker",
            "st-plugins/qa-reranker"} <= set(listed)
    assert "ready" in listed["all-MiniLM-L6-v2"]
    assert "not made yet, make it with `st-plugins train-reranker`" in listed["st-plugins/stsb-reranker"]
    assert "make it with `st-plugins train-reranker --task qa`" in listed["st-plugins/qa-reranker"]
    assert offline[-1] == "Or pass an existing model folder, or a hub id present in the cache."


def test_resolve_missing_cross_encoder_lists_only_cross_encoders(tmp_path, monkeypatch):
    """The seed example's hub name, offline and not cached: one error naming the offline rerankers and their command."""
    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        resolve.resolve_model_path("cross-encoder/stsb-distilroberta-base", cache_folder=tmp_path / "hub", kind="cross",
                                   hub_namespaces=("sentence-transformers", "cross-encoder"))
    message = str(info.value)
    assert message.startswith("Could not find cross-encoder 'cross-encoder/stsb-distilroberta-base': it is not a local "
                              "folder, and 'cross-encoder/stsb-distilroberta-base' is not in the Hugging Face hub cache")
    assert "while downloads are off (HF_HUB_OFFLINE=1 or local_files_only=True)" in message
    offline = message.split("Cross-encoders that work offline here (pass the name):\n", 1)[1]
    assert "'st-plugins/qa-reranker': not made yet, make it with `st-plugins train-reranker --task qa`" in offline
    assert "'st-plugins/stsb-reranker': not made yet, make it with `st-plugins train-reranker`" in offline
    assert "all-MiniLM-L6-v2" not in offline  # a bi-encoder is no alternative to a cross-encoder


def test_resolve_code_registration_wins_over_entry_points(tmp_path, monkeypatch):
    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path / "home"))
    fake_reranker(tmp_path / "home")
    fresh = {k: v for k, v in resolve._REGISTRY.items() if k != "st-plugins/stsb-reranker"}
    monkeypatch.setattr(resolve, "_REGISTRY", fresh)
    monkeypatch.setattr(resolve, "_discovered", False)  # entry points not read yet
    resolve.register_model("st-plugins/stsb-reranker", lambda: tmp_path)
    assert "st-plugins/stsb-reranker" in resolve.registered_models() and resolve._discovered  # entry points read
    assert resolve.resolve_model_path("st-plugins/stsb-reranker") == tmp_path


def test_resolve_bad_hub_id_is_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"hub repo 'acme/bad\.\.id'"):  # HFValidationError, a ValueError
        resolve.resolve_model_path("acme/bad..id", cache_folder=tmp_path, local_files_only=True)


def test_resolve_bug_in_hub_lookup_is_not_reported_as_not_found(tmp_path, monkeypatch):
    import huggingface_hub

    def broken(*args, **kwargs):
        raise TypeError("a bug, not a missing model")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", broken)
    with pytest.raises(TypeError, match="a bug"):
        resolve.resolve_model_path("acme/some-model", cache_folder=tmp_path, local_files_only=True)
