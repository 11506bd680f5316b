"""The runtime's numpy Dense head (:class:`NumpyDense`) and its activations, and the torch Dense twin, against
sentence-transformers' Dense module with the same random weights (the folder it saves).

Tolerance 1e-6 absolute plus 1e-6 relative: float32 rounds to ~6e-8 relative, and numpy's and torch's matmuls
sum in different orders (measured: <= 5e-7 on outputs up to ~3).
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st_modules = pytest.importorskip("sentence_transformers.sentence_transformer.modules")

from st_plugins.core.heads import Dense  # noqa: E402
from st_plugins.core.runtime.heads import ACTIVATIONS, NumpyDense, activation  # noqa: E402
from st_plugins.core.spec import DenseSpec  # noqa: E402
from st_plugins.errors import ModelFormatError  # noqa: E402

TOL = 1e-6
IN, OUT = 24, 10


def _torch_activation(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)()


def _st_dense(folder, dotted: str, bias: bool, seed: int = 0, safe_serialization: bool = True):
    """sentence-transformers' Dense with seeded random weights (and bias), saved to ``folder``; its config."""
    torch.manual_seed(seed)
    dense = st_modules.Dense(IN, OUT, bias=bias, activation_function=_torch_activation(dotted))
    if bias:
        with torch.no_grad():
            dense.linear.bias.normal_(0.0, 0.5)  # torch's default init draws it; make it visibly non-zero
    folder.mkdir(parents=True, exist_ok=True)
    dense.save(str(folder), safe_serialization=safe_serialization)
    return dense, json.loads((folder / "config.json").read_text())


def _inputs(seed: int = 1) -> np.ndarray:
    # Pre-activations of about N(0, 1.2^2) (torch's default weights, U(+-1/sqrt(IN))): both signs, the saturating
    # and the linear parts of tanh/sigmoid/GELU.
    return (2 * np.random.default_rng(seed).standard_normal((7, IN))).astype(np.float32)


def _theirs(dense, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return dense({"sentence_embedding": torch.from_numpy(x)})["sentence_embedding"].numpy()


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("dotted", sorted(ACTIVATIONS))
def test_numpy_dense_matches_sentence_transformers_dense(tmp_path, dotted, bias):
    dense, config = _st_dense(tmp_path, dotted, bias)
    assert config["activation_function"] == dotted  # the name sentence-transformers writes is the one we key on
    ours = NumpyDense(tmp_path, config["activation_function"])
    assert (ours.bias is not None) == bias and ours.weight.shape == (IN, OUT)
    x = _inputs()
    theirs = _theirs(dense, x)
    out = ours(x)
    assert out.dtype == np.float32 and out.shape == theirs.shape == (7, OUT)
    np.testing.assert_allclose(out, theirs, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ours(x[:1]), theirs[:1], rtol=TOL, atol=TOL)  # one row: the same figures


@pytest.mark.parametrize("dotted", sorted(ACTIVATIONS))
def test_numpy_activation_matches_torch(dotted):
    x = np.linspace(-6, 6, 97, dtype=np.float32)
    theirs = _torch_activation(dotted)(torch.from_numpy(x)).numpy()
    out = activation(dotted, "Dense")(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, theirs, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("dotted", ["torch.nn.modules.activation.Tanh", "torch.nn.modules.linear.Identity"])
def test_torch_dense_matches_sentence_transformers_dense(tmp_path, dotted):
    dense, config = _st_dense(tmp_path, dotted, bias=True, seed=3)
    spec = DenseSpec(tmp_path, config["in_features"], config["out_features"], config["bias"], config["activation_function"])
    ours = Dense.load(spec, allow_pickle=False, trust_remote_code=False)
    x = _inputs(4)
    with torch.no_grad():
        out = ours(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, _theirs(dense, x), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(NumpyDense(tmp_path, spec.activation)(x), out, rtol=TOL, atol=TOL)  # the twins agree


def test_numpy_dense_refuses_unknown_activation_and_pickles(tmp_path):
    _st_dense(tmp_path / "silu", "torch.nn.modules.activation.SiLU", bias=True)
    with pytest.raises(ModelFormatError, match=r"uses 'torch.nn.modules.activation.SiLU'\. Use backend='torch'"):
        NumpyDense(tmp_path / "silu", "torch.nn.modules.activation.SiLU")
    _st_dense(tmp_path / "bin", "torch.nn.modules.activation.Tanh", bias=True, safe_serialization=False)
    assert (tmp_path / "bin" / "pytorch_model.bin").is_file()
    with pytest.raises(ModelFormatError, match=r"has no model\.safetensors; the runtime reads safetensors only"):
        NumpyDense(tmp_path / "bin", "torch.nn.modules.activation.Tanh")
