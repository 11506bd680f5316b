"""Build a graph artifact: write the graph, verify, (int8) quantize, write tokenizer and meta.

Two builders write the same artifact:

- **safetensors** (:mod:`.builder`, no torch): the graph is written straight from ``config.json`` +
  ``model.safetensors`` for the architectures it covers, in this process, in about a second; the
  tokenizer and its facts are read from the folder's files (:meth:`TextTokenizer.from_folder`).
- **export** (torch): the torch model is exported and checked against torch on probe batches; for
  everything else (other architectures, pickle checkpoints, weights changed in memory). Runs in the
  child process started by :func:`st_plugins.core.runtime.graphs.build_in_child` (``st-plugins
  build-graph``), or in-process when the model's torch engine is already loaded.

``$ST_PLUGINS_GRAPH_BUILDER`` (``auto`` by default, ``safetensors`` or ``export``) picks one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.core.runtime import store
from st_plugins.core.runtime.graphs import variant
from st_plugins.core.runtime.tokenizer import TextTokenizer, max_length_rule

__all__ = ["probe_batches", "write_artifact", "publish_graph", "build_for_folder", "direct_reason", "export_reason",
           "publish_direct", "builder_choice", "BUILDERS"]

BUILDERS = ("auto", "safetensors", "export")
_NO_TOKEN_TYPES = ("distilbert", "mpnet")  # their forward takes no token_type_ids (as the torch export sees it)


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


def builder_choice() -> str:
    """``$ST_PLUGINS_GRAPH_BUILDER``: ``auto`` (safetensors when it covers the model, else export), or one of them.

    Raises:
        InputValueError: Another value.
    """
    import os

    from st_plugins.errors import InputValueError

    value = os.environ.get("ST_PLUGINS_GRAPH_BUILDER", "auto").strip().lower() or "auto"
    if value not in BUILDERS:
        raise InputValueError(f"$ST_PLUGINS_GRAPH_BUILDER must be one of {list(BUILDERS)}; got {value!r}.")
    return value


def _spec(root: Path, kind: str) -> Any:
    from st_plugins.core.spec import read_cross_spec, read_spec

    return read_spec(root) if kind == "bi" else read_cross_spec(root)


def direct_reason(root: Path, kind: str) -> str | None:
    """Why the safetensors builder cannot build ``root``'s graph (``None``: it can)."""
    from st_plugins.core.backends.builder import unsupported_reason

    spec = _spec(Path(root), kind)
    path = spec.transformer_path
    if kind == "cross" and not spec.is_classifier:
        return "the folder has no sequence-classification head"
    if not (path / "model.safetensors").is_file():
        return f"{path} has no single model.safetensors (a pickle or sharded checkpoint)"
    if not (path / "tokenizer.json").is_file():
        return f"{path} has no tokenizer.json"
    return unsupported_reason(spec.config, kind)


def export_reason(root: Path, kind: str, builder: str | None = None) -> str | None:
    """Why ``root``'s graph must be exported with torch; ``None`` when the safetensors builder writes it.

    Args:
        builder: ``auto``, ``safetensors`` or ``export`` (default: :func:`builder_choice`).
    """
    builder = builder or builder_choice()
    if builder == "safetensors":
        return None
    if builder == "export":
        return "the export builder was asked for"
    return direct_reason(root, kind)


def _graph_inputs(config: dict[str, Any]) -> tuple[str, ...]:
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return keys[:2] if config.get("model_type") in _NO_TOKEN_TYPES else keys


def write_direct(root: Path, kind: str, backend: str, folder: Path) -> dict[str, Any]:
    """Write ``model.onnx`` + ``tokenizer.json`` of ``root`` into ``folder`` with the safetensors builder (no torch).

    Raises:
        BackendError: The graph gives non-finite outputs, or int8 loses too much accuracy.
    """
    from st_plugins.core.backends.builder import build_graph
    from st_plugins.core.runtime.session import make_session, user_threads
    from st_plugins.errors import BackendError

    spec = _spec(root, kind)
    tokenizer = TextTokenizer.from_folder(spec.transformer_path, lowercase=spec.do_lower_case)
    tokenizer.max_length = max_length_rule(None, spec.max_seq_length, tokenizer.facts.model_max_length,
                                           spec.config.get("max_position_embeddings"))
    keys = _graph_inputs(spec.config)
    output = "token_embeddings" if kind == "bi" else "logits"
    (folder / "tokenizer.json").write_text(tokenizer.backend_json, encoding="utf-8")
    plain = folder / ("model.onnx" if backend == "onnx" else "plain.onnx")
    info = build_graph(spec.transformer_path, kind, plain, keys)
    meta: dict[str, Any] = {"variant": variant(kind, backend), "tokenizer": tokenizer.facts.to_json(),
                            "inputs": list(keys), "output": output, "torch": None, **info}

    if backend == "onnx":
        # Exactness is the builder's (tested against transformers per architecture) and it refuses non-finite
        # weights. No offline optimization pass: ONNX Runtime fuses this graph at session start in about the
        # time it takes to load a pre-optimized file (0.156 vs 0.135 s here), and skipping it saves a second
        # load of the 90 MB graph on first use (0.46 s, 83 MiB for all-MiniLM-L6-v2).
        return meta

    def finite(outputs: list[np.ndarray]) -> list[np.ndarray]:
        if not all(np.isfinite(r).all() for r in outputs):
            raise BackendError(f"The graph built from {spec.transformer_path / 'model.safetensors'} gives non-finite "
                               "outputs; use ST_PLUGINS_GRAPH_BUILDER=export (needs torch).")
        return outputs

    from st_plugins.core.backends.quantize import quantize_int8

    probes = probe_batches(tokenizer, keys, pairs=kind == "cross")
    session = make_session(plain, threads=user_threads())
    reference = finite([session.run(None, feeds)[0] for feeds in probes])
    meta.update(quantize_int8(plain, folder / "model.onnx", probes, reference))
    plain.unlink()
    return _optimized(folder / "model.onnx", meta)


def publish_direct(root: Path, kind: str, backend: str) -> Path:
    """Build ``root``'s graph with the safetensors builder into the disk cache (atomic; no torch)."""
    root = Path(root)
    target = store.artifact_dir(store.content_hash(root), variant(kind, backend))
    if store.is_complete(target):
        return target
    return store.publish(target, lambda tmp: write_direct(root, kind, backend, tmp))


def build_for_folder(root: Path, kind: str, backend: str, allow_pickle: bool = False, builder: str = "auto") -> Path:
    """Publish ``root``'s graph into the disk cache: with the safetensors builder when ``builder`` allows and it
    covers the model, else by loading the torch engine (fp32, CPU) and exporting it."""
    from st_plugins.core.backbone import load_tokenizer
    from st_plugins.core.spec import read_cross_spec, read_spec

    root = Path(root)
    target = store.artifact_dir(store.content_hash(root), variant(kind, backend))
    if store.is_complete(target):
        return target
    if export_reason(root, kind, builder) is None:
        return publish_direct(root, kind, backend)
    from st_plugins.core.torch_models import TorchBiEncoder, TorchCrossEncoder
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
