"""numpy pooling/normalize (the lean runtime's) against the torch functions, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st_plugins.core.backends import numpy_heads
from st_plugins.core.pooling import pool as torch_pool
from st_plugins.core.spec import POOLING_MODES


@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("prompt_length", [None, 2])
def test_numpy_heads_pool_matches_torch(left, prompt_length):
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(5, 9, 4)).astype(np.float32)
    lengths = [9, 4, 1, 6, 3]
    mask = np.zeros((5, 9), dtype=np.int64)
    for row, n in enumerate(lengths):
        if left:
            mask[row, 9 - n:] = 1
        else:
            mask[row, :n] = 1
    assert (mask.sum(axis=1) == lengths).all()
    for mode in POOLING_MODES:
        got = numpy_heads.pool(tokens, mask, (mode,), prompt_length)
        want = torch_pool(torch.from_numpy(tokens), torch.from_numpy(mask), (mode,), prompt_length).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=mode)


def test_numpy_heads_normalize_matches_torch():
    x = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    x[2] = 0
    want = torch.nn.functional.normalize(torch.from_numpy(x), dim=-1).numpy()
    np.testing.assert_allclose(numpy_heads.normalize(x), want, rtol=1e-6, atol=1e-7)
