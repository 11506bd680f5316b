"""Pick the fast path of one encoder, build or reuse its artifact, and keep it honest.

A :class:`FastPath` belongs to one model instance. For each forward it answers "which runner?":
``None`` means the model's own torch forward. Artifacts made from the model folder are cached on disk
(:mod:`~st_plugins.core.backends.store`); before one is used it is checked against the in-memory torch
model on a probe batch, so weights changed in memory (training, ``load_state_dict``, a randomly
initialised head) are never served from a stale file. Then ``auto`` falls back to torch and an explicit
``onnx``/``int8`` exports the in-memory weights to a temporary folder.
"""

from __future__ import annotations

import importlib.util
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.core.backends import BACKENDS, check_backend
from st_plugins.core.backends import store
from st_plugins.errors import InputValueError, require

__all__ = ["FastPath", "TorchBf16Runner", "onnx_available", "probe_batches"]

VERIFY_MIN_COSINE = {"int8": 0.99}


def onnx_available() -> bool:
    """True when onnxruntime and onnx (the ``onnx`` extra) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def probe_batches(tokenizer: Any, max_length: int, pairs: bool = False) -> list[dict[str, np.ndarray]]:
    """Padded numpy batches of the built-in calibration sentences (mixed lengths, one over-long text)."""
    from st_plugins.core import batching
    from st_plugins.core.calibration import CALIBRATION_SENTENCES

    texts = list(CALIBRATION_SENTENCES[:47]) + [" ".join(CALIBRATION_SENTENCES * 2)]
    second = texts[1:] + texts[:1] if pairs else None
    enc = batching.tokenize(tokenizer, texts, max_length, pairs=second)
    return [{k: v.numpy() for k, v in feats.items()}
            for _, feats in batching.padded_batches(tokenizer, enc, np.arange(len(texts)), 16)]


def _fingerprint(module: Any) -> tuple:
    return tuple((p.data_ptr(), p._version, p.dtype) for p in module.parameters())


class TorchBf16Runner:
    """The torch model under ``torch.autocast(bfloat16)``: matmuls in bf16, norms and softmax in fp32."""

    def __init__(self, model: Any, output: str, device: Any, keys: tuple[str, ...]) -> None:
        self.model, self.output, self.device, self.keys = model, output, device, keys

    def stream(self, batches: Iterable[tuple[Any, dict[str, Any]]]) -> Iterator[tuple[Any, dict[str, Any], Any]]:
        import torch

        for idx, feats in batches:
            inputs = {k: v.to(self.device) for k, v in feats.items() if k in self.keys}
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16):
                out = self.model(**inputs, return_dict=True)
            yield idx, feats, (out.last_hidden_state if self.output == "token_embeddings" else out.logits).float()


class FastPath:
    """Backend choice and runner cache of one encoder.

    Args:
        backend: One of :data:`~st_plugins.core.backends.BACKENDS` (aliases accepted).
        kind: ``"bi"`` (graph output: token embeddings) or ``"cross"`` (logits).
        root: The model folder (its content hash keys the disk cache).
        device: The model's device at load (``onnx``/``int8`` need the CPU).
        allowed: Backends this kind of model supports.

    Raises:
        InputValueError: Unknown backend, or ``onnx``/``int8`` on a non-CPU device.
        MissingDependencyError: ``onnx``/``int8`` without onnxruntime + onnx installed.
    """

    def __init__(self, backend: str, kind: str, root: Path, device: Any, allowed: tuple[str, ...] = BACKENDS) -> None:
        self.backend = check_backend(backend, allowed)
        self.kind, self.root = kind, Path(root)
        self.output = "token_embeddings" if kind == "bi" else "logits"
        if self.backend in ("onnx", "int8"):
            self._check_device(device)
            require("onnxruntime", "onnx")
            require("onnx", "onnx")
        self._reset()

    def _reset(self) -> None:
        self._runner: Any = None
        self._runner_fp: tuple | None = None
        self._rejected: tuple | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._lock = threading.Lock()
        self.artifact: Path | None = None

    def __getstate__(self) -> dict[str, Any]:  # sessions and temp folders are not copied or pickled
        return {"backend": self.backend, "kind": self.kind, "root": self.root, "output": self.output}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def _check_device(self, device: Any) -> None:
        if getattr(device, "type", str(device)) != "cpu":
            raise InputValueError(
                f"`backend={self.backend!r}` runs on the CPU only; the model is on {device}. "
                "Use backend='torch' or 'bf16' on accelerators, or device='cpu'."
            )

    def runner(self, model: Any, device: Any, probes: Callable[[], list[dict[str, np.ndarray]]],
               keys: tuple[str, ...]) -> Any:
        """The runner for the next forward of ``model`` (a transformers model), or ``None`` for torch."""
        name = self.backend
        if name == "torch" or model.training:
            return None
        if name == "bf16":
            return TorchBf16Runner(model, self.output, device, keys)
        if getattr(device, "type", str(device)) != "cpu":
            if name == "auto":
                return None
            self._check_device(device)
        if name == "auto" and (not onnx_available() or any(p.dtype != _float32() for p in model.parameters())):
            return None
        fp = _fingerprint(model)
        if self._runner is not None and self._runner_fp == fp:
            return self._runner
        if self._rejected == fp:
            return None
        with self._lock:
            return self._select(model, probes, fp, keys)

    def _select(self, model: Any, probes: Callable[[], list[dict[str, np.ndarray]]], fp: tuple,
                keys: tuple[str, ...]) -> Any:
        from st_plugins.core.backends.ort import OrtRunner

        variant = f"{self.kind}-{'onnx' if self.backend == 'auto' else self.backend}"
        batches = [{k: v for k, v in feeds.items() if k in keys} for feeds in probes()]
        try:
            target = store.artifact_dir(store.content_hash(self.root), variant)
            store.publish(target, lambda tmp: build_artifact(model, batches, tmp, variant))
            runner = OrtRunner(target / "model.onnx")
            if not self._verify(runner, model, batches[-1]):
                if self.backend == "auto":
                    self._rejected = fp  # weights differ from the folder's: torch until they change again
                    return None
                self._tmp = tempfile.TemporaryDirectory(prefix="st_plugins-")
                target = store.publish(Path(self._tmp.name) / variant, lambda tmp: build_artifact(model, batches, tmp, variant))
                runner = OrtRunner(target / "model.onnx")
        except Exception as exc:
            if self.backend != "auto":
                raise
            warnings.warn(f"st_plugins: the ONNX fast path is unavailable for {self.root} ({exc}); using torch.",
                          RuntimeWarning, stacklevel=4)
            self._rejected = fp
            return None
        self._runner, self._runner_fp, self.artifact = runner, fp, target
        return runner

    def _verify(self, runner: Any, model: Any, feeds: dict[str, np.ndarray]) -> bool:
        from st_plugins.core.backends.export import EXACT_TOLERANCE, compare, torch_reference
        from st_plugins.core.backends.quantize import _pooled

        ref = torch_reference(model, {k: v for k, v in feeds.items()}, self.output)
        got = runner.run(feeds)
        if self.backend != "int8":
            return compare(got, ref, feeds["attention_mask"]) <= EXACT_TOLERANCE
        cos = (_pooled(got, feeds["attention_mask"]) * _pooled(ref, feeds["attention_mask"])).sum(axis=1)
        return float(cos.min()) >= VERIFY_MIN_COSINE["int8"]


def _float32() -> Any:
    import torch

    return torch.float32


def build_artifact(model: Any, probes: list[dict[str, np.ndarray]], folder: Path, variant: str) -> dict[str, Any]:
    """Write ``folder/model.onnx`` for ``variant`` (``bi-onnx``, ``bi-int8``, ``cross-onnx``, ...); return metadata."""
    from st_plugins.core.backends.export import describe, export_fp32, export_plain, torch_reference

    kind, _, precision = variant.partition("-")
    output = "token_embeddings" if kind == "bi" else "logits"
    if precision == "onnx":
        return {"variant": variant, **export_fp32(model, probes, folder, output)}
    from st_plugins.core.backends.quantize import quantize_int8

    plain = folder / "plain.onnx"
    error = export_plain(model, probes, plain, output)
    reference = [torch_reference(model, feeds, output) for feeds in probes]
    meta = quantize_int8(plain, folder / "model.onnx", probes, reference)
    plain.unlink()
    return {"variant": variant, **describe(model, probes, output), "plain_max_error": error, **meta}
