"""Modules applied after pooling: Dense (linear + activation) and Normalize."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from st_plugins.core.spec import DenseSpec
from st_plugins.errors import ModelFormatError, UnsafeCheckpointError

__all__ = ["Dense", "Normalize", "build_activation"]


def build_activation(dotted: str, trust_remote_code: bool = False, where: object = "the model") -> nn.Module:
    """Instantiate an activation named by its dotted path; only ``torch.*`` unless trusted."""
    if not dotted.startswith("torch.") and not trust_remote_code:
        raise UnsafeCheckpointError(
            f"Activation {dotted!r} in {where} is not a torch module, and importing it runs code from outside "
            "torch; pass `trust_remote_code=True` to import it."
        )
    module, _, name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ModelFormatError(f"Cannot import activation {dotted!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelFormatError(f"Activation {dotted!r} must be a torch.nn.Module class.")
    return cls()


def _activation_name(module: nn.Module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__name__}"


class Dense(nn.Module):
    """``activation(linear(x))`` on the sentence embedding (sentence-transformers' Dense)."""

    def __init__(self, spec: DenseSpec, trust_remote_code: bool = False):
        super().__init__()
        self.linear = nn.Linear(spec.in_features, spec.out_features, bias=spec.bias)
        self.activation_function = build_activation(spec.activation, trust_remote_code, spec.path / "config.json")
        self.spec = spec

    @classmethod
    def load(cls, spec: DenseSpec, allow_pickle: bool, trust_remote_code: bool) -> "Dense":
        module = cls(spec, trust_remote_code)
        st_file, bin_file = spec.path / "model.safetensors", spec.path / "pytorch_model.bin"
        if st_file.is_file():
            from safetensors.torch import load_file

            state = load_file(str(st_file))
        elif bin_file.is_file():
            if not allow_pickle:
                raise UnsafeCheckpointError(
                    f"{bin_file} is a pickle checkpoint; pass `allow_pickle=True` if you trust its source."
                )
            state = torch.load(bin_file, map_location="cpu", weights_only=True)
        else:
            raise ModelFormatError(f"Dense folder {spec.path} has no model.safetensors.")
        module.load_state_dict(state)
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation_function(self.linear(x))

    def config(self) -> dict:
        return {
            "in_features": self.linear.in_features,
            "out_features": self.linear.out_features,
            "bias": self.linear.bias is not None,
            "activation_function": _activation_name(self.activation_function),
        }

    def save(self, folder: Path) -> None:
        import json

        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.config(), indent=2))
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))


class Normalize(nn.Module):
    """L2 normalization of the sentence embedding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x, p=2, dim=-1)
