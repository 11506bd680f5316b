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

    st = pytest.importorskip("sentence_transformers")
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu", model_kwargs={"dtype": "bfloat16"})
    assert model.auto_model.dtype == torch.bfloat16
    out = model.encode(SENTENCES)
    assert out.dtype == np.float32 and out.shape == (len(SENTENCES), 32)
    # sentence-transformers in bfloat16 on the same folder computes the same figures (measured: identical); a model
    # left in float32 would be ~1e-2 away.
    theirs_bf16 = st.SentenceTransformer(str(tiny_bert_dir), device="cpu", model_kwargs={"dtype": torch.bfloat16})
    np.testing.assert_allclose(out, theirs_bf16.encode(SENTENCES), rtol=0, atol=1e-6)
    # Against float32 (sentence-transformers): bfloat16 keeps 8 significant bits (unit roundoff u = 2^-8 ~ 0.4%).
    # Allowing 4u: each row stays within 4u of its largest value (measured: 2.2u, at most 0.016 on values up to
    # 2.2) and turns by at most 4u radians, cosine >= 1 - (4u)^2 / 2 = 0.99988 (measured: >= 0.99998, ~1.4u).
    u = 2.0 ** -8
    reference = st.SentenceTransformer(str(tiny_bert_dir), device="cpu").encode(SENTENCES)
    assert np.all(np.abs(out - reference).max(axis=1) <= 4 * u * np.abs(reference).max(axis=1))
    cosine = (out * reference).sum(axis=1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(reference, axis=1))
    assert np.all(cosine >= 1 - (4 * u) ** 2 / 2), cosine


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
