"""The one pooling function against sentence-transformers' Pooling module, on numpy and on torch inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st_plugins.core.runtime.pooling import POOLING_MODES, normalize, pool

st_modules = pytest.importorskip("sentence_transformers.sentence_transformer.modules")


def _batch(left: bool):
    torch.manual_seed(3)
    tokens = torch.randn(3, 6, 4)
    lengths = [6, 4, 1]
    mask = torch.zeros(3, 6, dtype=torch.int64)
    for row, n in enumerate(lengths):
        mask[row, 6 - n:] = 1 if left else 0
        if not left:
            mask[row, :n] = 1
    return tokens, mask


@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("prompt_length", [None, 2])
@pytest.mark.parametrize("mode", POOLING_MODES)
def test_runtime_pool_matches_sentence_transformers(left, prompt_length, mode):
    tokens, mask = _batch(left)
    oracle = st_modules.Pooling(4, pooling_mode=mode, include_prompt=prompt_length is None)
    features = {"token_embeddings": tokens.clone(), "attention_mask": mask}
    if prompt_length:
        features["prompt_length"] = prompt_length
    want = oracle(features)["sentence_embedding"]
    on_torch = pool(tokens, mask, (mode,), prompt_length)
    on_numpy = pool(tokens.numpy(), mask.numpy(), (mode,), prompt_length)
    assert isinstance(on_torch, torch.Tensor) and on_numpy.dtype == np.float32
    assert torch.allclose(on_torch, want, atol=1e-6) and np.allclose(on_numpy, want.numpy(), atol=1e-6)


def test_runtime_pool_keeps_gradients_and_concatenates_modes():
    tokens, mask = _batch(False)
    tokens.requires_grad_()
    out = pool(tokens, mask, ("mean", "max", "cls"))
    assert out.shape == (3, 12)
    out.sum().backward()
    assert tokens.grad is not None and tokens.grad[2, 1:].abs().sum() == 0  # padding gets no gradient


def test_runtime_normalize_matches_torch():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-8, 0.0]], dtype=np.float32)
    want = torch.nn.functional.normalize(torch.from_numpy(x), p=2, dim=-1).numpy()
    assert np.allclose(normalize(x), want) and torch.allclose(normalize(torch.from_numpy(x)), torch.from_numpy(want))
