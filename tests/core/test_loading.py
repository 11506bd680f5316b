"""Loading: hub cache offline, errors listing what was tried, pickle refusal, the model cache."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from st_plugins import SentenceTransformer
from st_plugins.core import cache
from st_plugins.core.resolve import resolve_model_path
from st_plugins.errors import ModelNotFoundError, UnsafeCheckpointError
from tests.conftest import SENTENCES


def _lay_out_hub_cache(root, repo_id, folder, commit="a" * 40, ref="main"):
    """The on-disk layout huggingface_hub uses: models--org--name/{refs/<ref>, snapshots/<commit>/...}."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return repo / "snapshots" / commit


def test_loading_from_hub_cache_offline(make_st_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = make_st_folder(pooling="cls")
    _lay_out_hub_cache(tmp_path, "acme/tiny-embedder", folder)
    _lay_out_hub_cache(tmp_path, "acme/tiny-embedder", make_st_folder(pooling="max"), commit="b" * 40, ref="v2")
    from_hub = SentenceTransformer("acme/tiny-embedder", cache_folder=str(tmp_path), device="cpu")
    direct = SentenceTransformer(str(folder), device="cpu")
    assert np.array_equal(from_hub.encode(SENTENCES), direct.encode(SENTENCES))
    v2 = SentenceTransformer("acme/tiny-embedder", cache_folder=str(tmp_path), revision="v2", device="cpu")
    assert v2.spec.pooling.modes == ("max",)


def test_loading_short_name_tries_sentence_transformers_org(make_st_folder, tmp_path):
    _lay_out_hub_cache(tmp_path, "sentence-transformers/tiny-thing", make_st_folder())
    path = resolve_model_path("tiny-thing", cache_folder=tmp_path, local_files_only=True)
    assert (path / "modules.json").is_file()


def test_loading_missing_model_lists_everything_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        SentenceTransformer("no-such-model-xyz", cache_folder=str(tmp_path))
    message = str(info.value)
    assert isinstance(info.value, OSError)
    for fragment in ("local folder 'no-such-model-xyz'", "hub repo 'no-such-model-xyz'",
                     "hub repo 'sentence-transformers/no-such-model-xyz'", "offline", str(tmp_path)):
        assert fragment in message


def test_loading_pickle_checkpoint_refused_unless_opted_in(tiny_bert_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert_dir, folder)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match=r"pytorch_model\.bin.*`allow_pickle=True`"):
        SentenceTransformer(str(folder), device="cpu")
    loaded = SentenceTransformer(str(folder), device="cpu", allow_pickle=True)
    reference = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    assert np.abs(loaded.encode(SENTENCES) - reference.encode(SENTENCES)).max() <= 1e-6


def test_loading_model_kwargs_dtype(tiny_bert_dir):
    import torch

    model = SentenceTransformer(str(tiny_bert_dir), device="cpu", model_kwargs={"dtype": "bfloat16"})
    assert model.auto_model.dtype == torch.bfloat16
    out = model.encode(SENTENCES)
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_cache_shares_one_instance_across_threads(tiny_bert_dir):
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_model("bi", tiny_bert_dir, device="cpu")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in results}) == 1
    key = cache.cache_key("bi", tiny_bert_dir, device="cpu")
    assert cache.load_counts()[key] == 1
    other = cache.get_model("bi", tiny_bert_dir, device="cpu", truncate_dim=8)
    assert other is not results[0] and other.get_embedding_dimension() == 8
