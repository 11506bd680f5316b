"""The torch engine: the transformer (+ heads) as ``nn.Module``s, for training, GPUs, bf16 and graph builds.

Imported only when something needs torch (see :mod:`st_plugins.core.runtime`). Pooling is the
runtime's own function (:func:`st_plugins.core.runtime.pooling.pool`), which runs on torch tensors
with their gradients, so the two engines share every rule but the transformer forward.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from st_plugins.core.backbone import load_transformer
from st_plugins.core.heads import Dense, Normalize
from st_plugins.core.runtime.engines import apply_steps, token_rows
from st_plugins.core.spec import DenseSpec, ModelSpec, PoolingSpec

__all__ = ["TorchBiEncoder", "TorchCrossEncoder", "TorchEngine", "weights_digest", "input_keys", "FEATURE_KEYS",
           "on_device"]

FEATURE_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def weights_digest(module: nn.Module) -> str:
    """A hash of every parameter's name, dtype and bytes (what a graph of these weights is keyed by)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for name, p in module.named_parameters():
        digest.update(f"{name}:{p.dtype}:{tuple(p.shape)}".encode())
        digest.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def input_keys(model: Any) -> tuple[str, ...]:
    """The features ``model.forward`` declares (DistilBERT takes no ``token_type_ids``)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return tuple(k for k in FEATURE_KEYS if k in params) or FEATURE_KEYS


def on_device(module: nn.Module, device: str) -> nn.Module:
    """``module`` itself when it is on ``device``, else a moved copy (the shared original stays put)."""
    current, wanted = next(module.parameters()).device, torch.device(device)
    if wanted.type == current.type and wanted.index in (None, current.index):  # "cuda" is the current cuda device
        return module
    return copy.deepcopy(module).to(device)


class TorchBiEncoder(nn.Module):
    """Transformer -> pooling -> Dense/Normalize, in the folder's module order (sentence-transformers' stack)."""

    def __init__(self, spec: ModelSpec, auto_model: nn.Module, heads: list[nn.Module]) -> None:
        super().__init__()
        self.spec = spec
        self.auto_model = auto_model
        self.heads = nn.ModuleList(heads)
        self.keys = input_keys(auto_model)

    @classmethod
    def load(cls, spec: ModelSpec, model_kwargs: dict | None, config_kwargs: dict | None, trust_remote_code: bool,
             allow_pickle: bool) -> TorchBiEncoder:
        auto = load_transformer(spec.transformer_path, model_kwargs=model_kwargs, config_kwargs=config_kwargs,
                                trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        heads = [Dense.load(s, allow_pickle, trust_remote_code) if isinstance(s, DenseSpec) else Normalize()
                 for s in spec.steps if not isinstance(s, PoolingSpec)]
        return cls(spec, auto, heads).eval()

    def transformer_forward(self, features: dict[str, Any]) -> Tensor:
        inputs = {k: features[k] for k in self.keys if k in features}
        return self.auto_model(**inputs, return_dict=True).last_hidden_state

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        tokens = self.transformer_forward(features)
        prompt_length = features.get("prompt_length")
        emb = apply_steps(self.spec, list(self.heads), tokens, features["attention_mask"],
                          int(prompt_length) if prompt_length else None)
        return dict(features, token_embeddings=tokens, sentence_embedding=emb)


class TorchCrossEncoder(nn.Module):
    """A transformers sequence-classification model returning float32 logits ``(batch, num_labels)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.keys = input_keys(model)

    @classmethod
    def load(cls, folder: Path, model_kwargs: dict | None, config_kwargs: dict | None, trust_remote_code: bool,
             allow_pickle: bool) -> TorchCrossEncoder:
        model = load_transformer(folder, task="sequence-classification", model_kwargs=model_kwargs,
                                 config_kwargs=config_kwargs, trust_remote_code=trust_remote_code,
                                 allow_pickle=allow_pickle)
        return cls(model).eval()

    def transformer_forward(self, features: dict[str, Any]) -> Tensor:
        inputs = {k: features[k] for k in self.keys if k in features}
        return self.model(**inputs, return_dict=True).logits

    def forward(self, features: dict[str, Any]) -> Tensor:
        return self.transformer_forward(features).float()


class TorchEngine:
    """Runs a torch encoder on padded numpy batches: same tuples as the runtime's engines.

    Args:
        module: A :class:`TorchBiEncoder` or :class:`TorchCrossEncoder` (in eval mode for the call).
        device: Where it runs.
        bf16: Under ``torch.autocast(bfloat16)`` (matmuls bf16, norms and softmax fp32).
    """

    def __init__(self, module: nn.Module, device: str, bf16: bool = False) -> None:
        self.module, self.device, self.bf16 = module, torch.device(device), bf16

    def _forward(self, feats: dict[str, Any], prompt_length: int | None) -> Any:
        inputs: dict[str, Any] = {k: torch.from_numpy(v).to(self.device) for k, v in feats.items()}
        if prompt_length is not None:
            inputs["prompt_length"] = prompt_length
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.module(inputs)

    def stream(self, batches: Any, prompt_length: int | None = None, want_tokens: bool = False) -> Any:
        was_training = self.module.training
        self.module.eval()  # no dropout while encoding; the caller's mode is restored below
        try:
            for idx, feats in batches:
                out = self._forward(feats, prompt_length)
                if isinstance(self.module, TorchCrossEncoder):
                    yield idx, feats, out.float().cpu().numpy()
                    continue
                emb = out["sentence_embedding"].float().cpu().numpy()
                tokens = token_rows(out["token_embeddings"].float().cpu().numpy(), feats["attention_mask"]) if want_tokens else None
                yield idx, feats, emb, tokens
        finally:
            self.module.train(was_training)
