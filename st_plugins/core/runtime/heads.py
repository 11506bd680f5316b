"""Dense heads and activations in numpy: the runtime's twins of :mod:`st_plugins.core.heads` (torch).

Activations are named by the dotted torch class sentence-transformers stores in its config files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from st_plugins.errors import ModelFormatError

__all__ = ["NumpyDense", "ACTIVATIONS", "activation"]


def _gelu(x: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return (0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))).astype(x.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype)


ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": lambda x: x,
    "torch.nn.modules.activation.Tanh": np.tanh,
    "torch.nn.modules.activation.ReLU": lambda x: np.maximum(x, 0),
    "torch.nn.modules.activation.Sigmoid": _sigmoid,
    "torch.nn.modules.activation.GELU": _gelu,
}


def activation(name: str, where: object) -> object:
    """The numpy function for a torch activation class path.

    Raises:
        ModelFormatError: The runtime does not know it (``where`` names the model part).

    Example:
        >>> activation("torch.nn.modules.activation.Tanh", "Dense")(np.zeros(2)).tolist()
        [0.0, 0.0]
    """
    if name not in ACTIVATIONS:
        raise ModelFormatError(
            f"The runtime knows the activations {sorted(ACTIVATIONS)}; {where} uses {name!r}. "
            "Use backend='torch' for this model."
        )
    return ACTIVATIONS[name]


class NumpyDense:
    """``activation(x @ W.T + b)`` from a sentence-transformers Dense folder (``model.safetensors``).

    Raises:
        ModelFormatError: No safetensors weights, or an activation the lean runtime does not know.
    """

    def __init__(self, folder: Path, activation_name: str) -> None:
        self.activation = activation(activation_name, f"Dense {folder}")
        if not (folder / "model.safetensors").is_file():
            raise ModelFormatError(f"{folder} has no model.safetensors; the runtime reads safetensors only (backend='torch' reads pickles with allow_pickle=True).")
        from safetensors.numpy import load_file

        state = load_file(str(folder / "model.safetensors"))
        self.weight = np.ascontiguousarray(state["linear.weight"].astype(np.float32).T)
        self.bias = state["linear.bias"].astype(np.float32) if "linear.bias" in state else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.weight
        return self.activation(y + self.bias if self.bias is not None else y)
