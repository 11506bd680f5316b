"""int8 graphs that keep their accuracy: smoothed activations, per-channel weights, fp32 where it matters.

Plain dynamic quantization of all-MiniLM-L6-v2 reaches a min cosine of only ~0.96 to fp32: ONNX
Runtime quantizes each activation with one per-tensor scale, and a few input channels carry values
far larger than the rest. So, before quantizing (weights int8 per output channel, activations uint8
dynamically):

1. Attention and FFN-up inputs, SmoothQuant-style: for each group of MatMuls sharing an input ``x``,
   ``s = max|x|^0.5 / max|W|^0.5`` per channel (``max|x|`` from calibration batches) moves range from the
   activation into the weight: ``x / s`` (one ``Mul``) times ``diag(s) W`` (folded).
2. FFN down-projections (more inputs than outputs, fed by GELU), LLM.int8()-style: the
   :data:`OUTLIER_CHANNELS` input channels with the largest range are split off into a small fp32 MatMul,
   the rest runs int8. The first layer's down-projection, the most sensitive, stays fp32.
3. If the guard fails: every down-projection fp32; then the whole FFN fp32.

The guard: min cosine >= :data:`MIN_COSINE` between int8 and fp32 mean-pooled token embeddings on the
calibration batches, else :class:`~st_plugins.errors.BackendError`. Activation scales are per batch, so an int8 vector
moves slightly (cosine ~1e-4) with the other texts in its batch.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.core.runtime.pooling import normalize, pool
from st_plugins.errors import BackendError

__all__ = ["quantize_int8", "MIN_COSINE", "ALPHA", "OUTLIER_CHANNELS"]

MIN_COSINE = 0.995  # on calibration batches; the public guarantee (tests) is 0.99 on real sentences
ALPHA = 0.5
OUTLIER_CHANNELS = 8


def _weight_matmuls(graph: Any) -> tuple[list[Any], dict[str, Any]]:
    inits = {i.name: i for i in graph.initializer}
    return [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits], inits


def _activation_max(model: Any, probes: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    import onnx
    import onnxruntime as ort

    model = _copy(model)
    matmuls, _ = _weight_matmuls(model.graph)
    names = sorted({n.input[0] for n in matmuls})
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None) for x in names if x not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    found: dict[str, np.ndarray] = {}
    for feeds in probes:
        inputs = {i.name: feeds[i.name] for i in session.get_inputs()}
        keep = feeds["attention_mask"].reshape(-1) > 0
        for name, value in zip(names, session.run(names, inputs)):
            rows = np.abs(value.reshape(keep.size, -1)[keep]).max(axis=0)
            found[name] = np.maximum(found.get(name, 0.0), rows)
    return found


def _copy(model: Any) -> Any:
    import onnx

    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    return clone


def _smooth(model: Any, amax: dict[str, np.ndarray], chosen: set[str]) -> Any:
    from onnx import helper, numpy_helper

    model = _copy(model)
    graph = model.graph
    matmuls, inits = _weight_matmuls(graph)
    groups: dict[str, list[Any]] = {}
    for node in matmuls:
        if node.name in chosen:
            groups.setdefault(node.input[0], []).append(node)
    nodes = list(graph.node)
    for x, users in groups.items():
        weights = [numpy_helper.to_array(inits[n.input[1]]).astype(np.float32) for n in users]
        wmax = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
        scale = (np.maximum(amax[x], 1e-5) ** ALPHA / np.maximum(wmax, 1e-5) ** (1 - ALPHA)).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), f"{x}/smooth_inv"))
        mul = helper.make_node("Mul", [x, f"{x}/smooth_inv"], [f"{x}/smoothed"], name=f"{x}/smooth")
        nodes.insert(min(nodes.index(n) for n in users), mul)
        for node, weight in zip(users, weights):
            graph.initializer.append(numpy_helper.from_array(weight * scale[:, None], f"{node.input[1]}/smoothed"))
            node.input[0], node.input[1] = mul.output[0], f"{node.input[1]}/smoothed"
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


class _DropQuantizerWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


@contextlib.contextmanager
def _quiet_quantizer():
    """The quantizer warns through the root logger, which would install a handler on it. For the call only,
    a NullHandler keeps ``logging`` from doing so and a filter on the root logger drops the quantizer's own
    warnings; nothing else is muted (records of other loggers do not pass the root logger's filters)."""
    root, null, drop = logging.getLogger(), logging.NullHandler(), _DropQuantizerWarnings()
    root.addHandler(null)
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        root.removeHandler(null)


def _has_vnni() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags or "amx_int8" in flags


def _pooled(outputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean-pooled, normalized token embeddings (logits pass through): what the guard compares."""
    return outputs if outputs.ndim == 2 else normalize(pool(outputs, mask, ("mean",)))


def _min_cosine(path: Path, reference: list[np.ndarray], probes: list[dict[str, np.ndarray]]) -> float:
    from st_plugins.core.runtime.session import make_session

    session = make_session(path, threads=1)
    worst = 1.0
    for feeds, ref in zip(probes, reference):
        got = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})[0]
        cos = (_pooled(got, feeds["attention_mask"]) * _pooled(ref, feeds["attention_mask"])).sum(axis=1)
        worst = min(worst, float(cos.min()))
    return worst


def _split_outliers(model: Any, amax: dict[str, np.ndarray], nodes: set[str]) -> Any:
    """``x @ W`` -> ``(x * keep) @ W + x[..., S] @ W[S]``: the :data:`OUTLIER_CHANNELS` input channels with
    the largest calibration range stay fp32 (LLM.int8()-style), so they no longer set the int8 scale."""
    from onnx import helper, numpy_helper

    graph = model.graph
    matmuls, inits = _weight_matmuls(graph)
    nodes_list = list(graph.node)
    for node in [n for n in matmuls if n.name in nodes]:
        x, weight = node.input[0], numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        channels = np.sort(np.argsort(-amax[x])[:OUTLIER_CHANNELS]).astype(np.int64)
        keep = np.ones(weight.shape[0], dtype=np.float32)
        keep[channels] = 0.0
        base, out = f"{node.name}/outliers", node.output[0]
        graph.initializer.extend([numpy_helper.from_array(keep, f"{base}/keep"),
                                  numpy_helper.from_array(channels, f"{base}/channels"),
                                  numpy_helper.from_array(weight[channels], f"{base}/weight")])
        extra = [helper.make_node("Mul", [x, f"{base}/keep"], [f"{base}/rest"], name=f"{base}/mask"),
                 helper.make_node("Gather", [x, f"{base}/channels"], [f"{base}/x"], name=f"{base}/gather", axis=-1),
                 helper.make_node("MatMul", [f"{base}/x", f"{base}/weight"], [f"{base}/y"], name=f"{base}/matmul")]
        node.input[0], node.output[0] = f"{base}/rest", f"{out}/int8"
        add = helper.make_node("Add", [f"{out}/int8", f"{base}/y"], [out], name=f"{base}/add")
        at = nodes_list.index(node)
        nodes_list[at : at + 1] = [*extra, node, add]
    del graph.node[:]
    graph.node.extend(nodes_list)
    return model


def _variants(matmuls: list[Any], inits: dict[str, Any]) -> list[tuple[str, set[str], set[str]]]:
    """``(name, fp32 nodes, outlier-split nodes)`` from fastest to safest."""
    shape = {n.name: numpy_helper_shape(inits[n.input[1]]) for n in matmuls}
    down = [n.name for n in matmuls if shape[n.name][0] > shape[n.name][1]]  # graph order
    up = {n for n, (k, m) in shape.items() if m > k}
    first = set(down[:1])
    return [("down-split", first, set(down) - first), ("down-fp32", set(down), set()), ("ffn-fp32", set(down) | up, set())]


def quantize_int8(plain: Path, target: Path, probes: list[dict[str, np.ndarray]],
                  reference: list[np.ndarray]) -> dict[str, Any]:
    """Write the guarded int8 graph of ``plain`` (an unfused fp32 export) to ``target``.

    Tries, fastest first: attention and FFN-up smoothed int8, FFN-down int8 with outlier channels
    split off (first layer's FFN-down fp32); then every FFN-down fp32; then the whole FFN fp32.

    Args:
        plain: The fp32 graph with plain MatMul nodes.
        target: Output ``.onnx`` path.
        probes: Calibration feature batches (padded numpy).
        reference: The fp32 outputs for ``probes`` (the guard compares against them).

    Returns:
        Metadata: ``scheme``, ``int8_nodes``, ``fp32_nodes``, ``min_cosine`` (on the calibration batches).

    Raises:
        BackendError: No variant passes the :data:`MIN_COSINE` guard.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(plain))
    matmuls, inits = _weight_matmuls(model.graph)
    amax = _activation_max(model, probes)
    tried = {}
    for scheme, fp32, split in _variants(matmuls, inits):
        quantized = {n.name for n in matmuls} - fp32
        staged = plain.with_name("staged.onnx")
        onnx.save(_split_outliers(_smooth(model, amax, quantized - split), amax, split), str(staged))
        with _quiet_quantizer():
            quantize_dynamic(str(staged), str(target), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=not _has_vnni(), nodes_to_quantize=sorted(quantized),
                             op_types_to_quantize=["MatMul"], extra_options={"MatMulConstBOnly": True})
        staged.unlink()
        tried[scheme] = worst = _min_cosine(target, reference, probes)
        if worst >= MIN_COSINE:
            return {"scheme": scheme, "int8_nodes": len(quantized), "fp32_nodes": len(fp32), "min_cosine": worst,
                    "alpha": ALPHA, "outlier_channels": OUTLIER_CHANNELS if split else 0}
    target.unlink(missing_ok=True)
    raise BackendError(f"int8 graphs lose too much accuracy (min cosine {tried} < {MIN_COSINE}); use backend='onnx'.")


def numpy_helper_shape(initializer: Any) -> tuple[int, int]:
    dims = tuple(initializer.dims)
    return (int(dims[0]), int(dims[1])) if len(dims) == 2 else (0, 0)
