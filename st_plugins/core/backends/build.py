"""Build a graph artifact from a torch model: export, verify, (int8) quantize, write tokenizer and meta.

Runs where torch is available: in the child process started by
:func:`st_plugins.core.runtime.graphs.build_in_child` (``st-plugins build-graph``), or in-process when
the model's torch engine is already loaded (weights changed in memory go to a private folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.core.runtime import store
from st_plugins.core.runtime.graphs import variant
from st_plugins.core.runtime.tokenizer import TextTokenizer, max_length_rule

__all__ = ["probe_batches", "write_artifact", "publish_graph", "build_for_folder"]


def probe_batches(tokenizer: TextTokenizer, keys: tuple[str, ...], pairs: bool = False) -> list[dict[str, np.ndarray]]:
    """Padded batches of the built-in calibration sentences (mixed lengths, one over-long text)."""
    from st_plugins.core.calibration import CALIBRATION_SENTENCES

    texts = list(CALIBRATION_SENTENCES[:47]) + [" ".join(CALIBRATION_SENTENCES * 2)]
    second = texts[1:] + texts[:1] if pairs else None
    encodings = tokenizer.encode(texts, second)
    return [{k: v for k, v in tokenizer.batch(encodings[s : s + 16]).items() if k in keys}
            for s in range(0, len(encodings), 16)]


def write_artifact(engine: Any, tokenizer: TextTokenizer, kind: str, backend: str, folder: Path) -> dict[str, Any]:
    """Write ``model.onnx`` + ``tokenizer.json`` of ``engine`` (a torch engine in fp32) into ``folder``.

    Returns:
        The metadata stored as ``meta.json``.

    Raises:
        BackendError: The graph differs from torch beyond tolerance, or int8 loses too much accuracy.
    """
    from st_plugins.core.backends.export import describe, export_plain, torch_reference

    model = engine.auto_model if kind == "bi" else engine.model
    output = "token_embeddings" if kind == "bi" else "logits"
    probes = probe_batches(tokenizer, engine.keys, pairs=kind == "cross")
    (folder / "tokenizer.json").write_text(tokenizer.backend_json, encoding="utf-8")
    meta: dict[str, Any] = {"variant": variant(kind, backend), "tokenizer": tokenizer.facts.to_json(),
                            **describe(model, probes, output)}
    if backend == "onnx":
        meta["max_error"] = export_plain(model, probes, folder / "model.onnx", output)
        return _optimized(folder / "model.onnx", meta)
    from st_plugins.core.backends.quantize import quantize_int8

    plain = folder / "plain.onnx"
    meta["plain_max_error"] = export_plain(model, probes, plain, output)
    reference = [torch_reference(model, feeds, output) for feeds in probes]
    meta.update(quantize_int8(plain, folder / "model.onnx", probes, reference))
    plain.unlink()
    return _optimized(folder / "model.onnx", meta)


def _optimized(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    from st_plugins.core.runtime.session import optimize_offline

    optimize_offline(path)
    return {**meta, "optimized": "extended"}


def publish_graph(engine: Any, tokenizer: TextTokenizer, kind: str, backend: str, target: Path) -> Path:
    """Build into a temporary sibling of ``target`` and move it there atomically (see :func:`store.publish`)."""
    return store.publish(target, lambda tmp: write_artifact(engine, tokenizer, kind, backend, tmp))


def build_for_folder(root: Path, kind: str, backend: str, allow_pickle: bool = False) -> Path:
    """Load ``root``'s torch engine (fp32, CPU) and publish its graph into the disk cache."""
    from st_plugins.core.backbone import load_tokenizer
    from st_plugins.core.spec import read_cross_spec, read_spec
    from st_plugins.core.torch_models import TorchBiEncoder, TorchCrossEncoder

    root = Path(root)
    target = store.artifact_dir(store.content_hash(root), variant(kind, backend))
    if store.is_complete(target):
        return target
    if kind == "bi":
        spec = read_spec(root)
        engine = TorchBiEncoder.load(spec, None, None, False, allow_pickle)
    else:
        spec = read_cross_spec(root)
        engine = TorchCrossEncoder.load(spec.transformer_path, None, spec.config_kwargs(None, None), False, allow_pickle)
    hf = load_tokenizer(spec.transformer_path, None, False)
    tokenizer = TextTokenizer.from_transformers(hf, lowercase=spec.do_lower_case)
    tokenizer.max_length = max_length_rule(None, spec.max_seq_length, tokenizer.facts.model_max_length,
                                           spec.config.get("max_position_embeddings"))
    return publish_graph(engine, tokenizer, kind, backend, target)
