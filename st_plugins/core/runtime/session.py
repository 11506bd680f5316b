"""ONNX Runtime session runner: thread settings from the user, batches in, numpy out (torch-free).

Threads: ``num_threads`` when given; else ``torch.get_num_threads()`` when torch is already imported
(so ``torch.set_num_threads`` is honoured); else ``$OMP_NUM_THREADS``; else every core. The session is
rebuilt when that number changes between calls. Nothing global is changed.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.errors import require

__all__ = ["make_session", "optimize_offline", "user_threads", "OrtRunner"]


def user_threads() -> int:
    """The number of intra-op threads the user asked for (see the module docstring)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return max(1, int(torch.get_num_threads()))
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def make_session(path: str | os.PathLike, threads: int | None = None, optimized: bool = False,
                 save_optimized: str | os.PathLike | None = None):
    """An ``onnxruntime.InferenceSession`` on CPU with ``threads`` intra-op threads (one inter-op).

    Args:
        optimized: The file was optimized when it was built (:func:`optimize_offline`): load it as it is,
            which starts the session about twice as fast for a torch export. Otherwise ONNX Runtime applies
            its extended (hardware-independent) fusions at session start.
        save_optimized: Write the graph as ONNX Runtime optimized it (extended level) to this path.
    """
    ort = require("onnxruntime", "onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or user_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    else:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        if save_optimized is not None:
            options.optimized_model_filepath = str(save_optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def optimize_offline(path: Path, threads: int = 1) -> Any:
    """Replace the graph at ``path`` by ONNX Runtime's optimized form (fusions that are not hardware-specific),
    once at build time, so later sessions skip that work. Returns the session that did it (it runs that
    optimized graph)."""
    target = path.with_name(f".optimized-{path.name}")
    session = make_session(path, threads=threads, save_optimized=target)
    os.replace(target, path)
    return session


def split_batch(idx: Any, feats: dict[str, Any], parts: int) -> list[tuple[Any, dict[str, Any]]]:
    """Cut one padded batch into ``parts`` row slices, each trimmed to its own padded width.

    Example:
        >>> mask = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]])
        >>> [(i.tolist(), f["attention_mask"].shape) for i, f in split_batch(np.arange(3), {"attention_mask": mask}, 2)]
        [([0, 1], (2, 3)), ([2], (1, 1))]
    """
    n = len(idx)
    size = -(-n // max(1, min(parts, n)))
    out = []
    for start in range(0, n, size):
        rows = {k: v[start : start + size] for k, v in feats.items()}
        used = np.flatnonzero(np.asarray(rows["attention_mask"]).any(axis=0))
        if len(used):
            rows = {k: v[:, int(used[0]) : int(used[-1]) + 1] for k, v in rows.items()}
        out.append((idx[start : start + size], rows))
    return out


class OrtRunner:
    """Run an exported graph on padded numpy (or CPU torch) batches.

    With ``parallel="batches"`` and ``n`` threads, each batch is cut into ``n`` slices that run at
    once on ``n`` single-threaded calls of one session (small matrices scale badly across threads;
    independent slices scale well); ``parallel="intra"`` gives the session ``n`` threads instead.
    Either way the vectors are the same: each row's result does not depend on its neighbours.

    Args:
        path: The ``.onnx`` file.
        num_threads: Threads to use (default: :func:`user_threads`, read at each call).
        parallel: ``"batches"`` or ``"intra"``.

    Example:
        >>> runner = OrtRunner("model.onnx")  # doctest: +SKIP
        >>> runner.run({"input_ids": ids, "attention_mask": mask}).shape  # doctest: +SKIP
        (2, 7, 384)
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None, parallel: str = "batches",
                 optimized: bool = False) -> None:
        self.path = Path(path)
        self.optimized = optimized
        self.num_threads = num_threads
        self.parallel = parallel
        self._session = None
        self._key: tuple[int, int] = (0, 0)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _threads(self) -> tuple[int, int]:
        """``(workers, intra-op threads)`` for the next call."""
        threads = self.num_threads or user_threads()
        return (threads, 1) if self.parallel == "batches" else (1, threads)

    @property
    def session(self):
        key = self._threads()
        if self._session is None or key != self._key:
            with self._lock:
                if self._session is None or key != self._key:
                    self._session = make_session(self.path, key[1], self.optimized)
                    self._key = key
                    self.input_names = tuple(i.name for i in self._session.get_inputs())
                    if self._pool is not None:
                        self._pool.shutdown(wait=False)
                    self._pool = ThreadPoolExecutor(key[0], thread_name_prefix="st_plugins-ort") if key[0] > 1 else None
        return self._session

    def _feeds(self, feats: dict[str, Any]) -> dict[str, np.ndarray]:
        inputs = {}
        for name in self.input_names:
            value = feats[name] if name in feats else np.zeros_like(np.asarray(feats["input_ids"]))
            value = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
            inputs[name] = np.ascontiguousarray(value, dtype=np.float32 if value.dtype.kind == "f" else np.int64)
        return inputs

    def run(self, feeds: dict[str, Any]) -> np.ndarray:
        """The graph's single output for ``feeds`` (extra feature keys are ignored; ids as int64, pixels float32)."""
        session = self.session
        return session.run(None, self._feeds(feeds))[0]

    def stream(self, batches: Iterable[tuple[Any, dict[str, Any]]]) -> Iterator[tuple[Any, dict[str, Any], np.ndarray]]:
        """``(indices, features, output)`` per (slice of a) batch, in order; features are trimmed to the slice."""
        session = self.session
        pool, workers = self._pool, self._key[0]
        if pool is None:
            for idx, feats in batches:
                yield idx, feats, session.run(None, self._feeds(feats))[0]
            return
        pending: deque = deque()
        for idx, feats in batches:
            for part_idx, part in split_batch(idx, feats, workers):
                pending.append((part_idx, part, pool.submit(session.run, None, self._feeds(part))))
            while len(pending) > 2 * workers:
                part_idx, part, future = pending.popleft()
                yield part_idx, part, future.result()[0]
        while pending:
            part_idx, part, future = pending.popleft()
            yield part_idx, part, future.result()[0]
