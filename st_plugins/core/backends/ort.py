"""ONNX Runtime session runner: thread settings from the user, batches in, numpy out (torch-free).

Threads: ``num_threads`` when given; else ``torch.get_num_threads()`` when torch is already imported
(so ``torch.set_num_threads`` is honoured); else ``$OMP_NUM_THREADS``; else every core. The session is
rebuilt when that number changes between calls. Nothing global is changed.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.errors import require

__all__ = ["make_session", "user_threads", "OrtRunner"]


def user_threads() -> int:
    """The number of intra-op threads the user asked for (see the module docstring)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return max(1, int(torch.get_num_threads()))
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def make_session(path: str | os.PathLike, threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` on CPU with ``threads`` intra-op threads (one inter-op)."""
    ort = require("onnxruntime", "onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or user_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OrtRunner:
    """Run an exported graph on padded numpy batches.

    Args:
        path: The ``.onnx`` file.
        num_threads: Fixed intra-op threads (default: :func:`user_threads` at each call).

    Example:
        >>> runner = OrtRunner("model.onnx")  # doctest: +SKIP
        >>> runner.run({"input_ids": ids, "attention_mask": mask}).shape  # doctest: +SKIP
        (2, 7, 384)
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None) -> None:
        self.path = Path(path)
        self.num_threads = num_threads
        self._session = None
        self._threads = 0
        self._lock = threading.Lock()

    @property
    def session(self):
        threads = self.num_threads or user_threads()
        if self._session is None or threads != self._threads:
            with self._lock:
                if self._session is None or threads != self._threads:
                    self._session = make_session(self.path, threads)
                    self._threads = threads
                    self.input_names = tuple(i.name for i in self._session.get_inputs())
        return self._session

    def run(self, feeds: dict[str, Any]) -> np.ndarray:
        """The graph's single output for ``feeds`` (extra feature keys are ignored; int64 ids)."""
        session = self.session
        inputs = {}
        for name in self.input_names:
            value = feeds[name] if name in feeds else np.zeros_like(feeds["input_ids"])
            inputs[name] = np.ascontiguousarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.int64)
        return session.run(None, inputs)[0]

    def stream(self, batches: Iterable[tuple[Any, dict[str, Any]]]) -> Iterator[tuple[Any, dict[str, Any], np.ndarray]]:
        """``(indices, features, output)`` for each ``(indices, features)`` batch, in order."""
        for idx, feats in batches:
            yield idx, feats, self.run(feats)
