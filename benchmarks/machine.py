"""The machine the benchmark ran on, and its GEMM throughput limit per precision.

The GEMM limit times the MiniLM feed-forward shapes (``tokens x 384 @ 384 x 1536`` and
``tokens x 1536 @ 1536 x 384``) with every thread, through numpy and torch (fp32, bf16) and through
ONNX Runtime (fp32 ``MatMul``; int8: the same graph after ``quantize_dynamic`` with int8 per-channel
weights, as the library's int8 graphs use), so the model-level ratios can be read against it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from measure import timed

__all__ = ["FLAGS", "machine", "gemm_limits"]

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
_PACKAGES = ("numpy", "torch", "transformers", "onnxruntime", "sentence-transformers", "chromadb", "st_plugins")


def _cpuinfo() -> dict[str, str]:
    """The first processor's ``/proc/cpuinfo`` fields (empty off Linux)."""
    path = Path("/proc/cpuinfo")
    text = path.read_text() if path.is_file() else ""
    fields = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def machine() -> dict[str, Any]:
    """CPU model, the SIMD flags that matter here, cores, threads, load average and package versions."""
    from st_plugins.core.runtime.session import user_threads

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": info.get("model name", platform.processor() or "?"), "flags": [f for f in FLAGS if f in flags],
            "cores": os.cpu_count(), "physical_cores_per_socket": info.get("cpu cores"),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "runtime_threads": user_threads(), "python": platform.python_version(), "versions": versions,
            "loadavg_start": os.getloadavg()}


def _ort_sessions(shapes: list[tuple[int, int, int]], weights: list[np.ndarray], folder: Path, vnni: bool):
    """``{precision: [session per shape]}``: one ``MatMul`` with a constant weight, fp32 and dynamic int8."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from st_plugins.core.runtime.session import make_session

    out: dict[str, list] = {"onnxruntime fp32": [], "onnxruntime int8": []}
    for i, ((m, k, n), w) in enumerate(zip(shapes, weights)):
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], f"gemm{i}",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [numpy_helper.from_array(w, "w")])
        plain, int8 = folder / f"gemm{i}.onnx", folder / f"gemm{i}-int8.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(plain))
        logging.disable(logging.WARNING)  # the quantizer's advice to pre-process the graph
        try:
            quantize_dynamic(str(plain), str(int8), weight_type=QuantType.QInt8, per_channel=True, reduce_range=not vnni)
        finally:
            logging.disable(logging.NOTSET)
        out["onnxruntime fp32"].append(make_session(plain))
        out["onnxruntime int8"].append(make_session(int8))
    return out


def gemm_limits(tokens: int = 2048, reps: int = 10) -> dict[str, Any]:
    """GFLOP/s (int8: GOP/s) per precision: the median of ``reps`` passes over both feed-forward shapes."""
    import torch

    shapes = [(tokens, 384, 1536), (tokens, 1536, 384)]
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((m, k), dtype=np.float32) for m, k, _ in shapes]
    ws = [(rng.standard_normal((k, n), dtype=np.float32) * 0.05) for _, k, n in shapes]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    tx, tw = [torch.from_numpy(x) for x in xs], [torch.from_numpy(w) for w in ws]
    bx, bw = [t.bfloat16() for t in tx], [t.bfloat16() for t in tw]
    calls = {"numpy fp32": [lambda x=x, w=w: x @ w for x, w in zip(xs, ws)],
             "torch fp32": [lambda x=x, w=w: torch.matmul(x, w) for x, w in zip(tx, tw)],
             "torch bf16": [lambda x=x, w=w: torch.matmul(x, w) for x, w in zip(bx, bw)]}
    vnni = bool({"avx512_vnni", "avx_vnni"} & set(machine()["flags"]))
    with tempfile.TemporaryDirectory(prefix="st_plugins-gemm-") as folder, torch.inference_mode():
        for name, sessions in _ort_sessions(shapes, ws, Path(folder), vnni).items():
            calls[name] = [lambda s=s, x=x: s.run(None, {"x": x}) for s, x in zip(sessions, xs)]
        rates = {}
        for name, fns in calls.items():
            one_pass = timed(lambda fns=fns: [fn() for fn in fns])
            one_pass()  # warm-up
            rates[name] = flops / statistics.median(one_pass() for _ in range(reps)) / 1e9
    return {"tokens": tokens, "shapes": shapes, "torch_threads": torch.get_num_threads(), "gflops": rates}
