"""A model's inference graph: found in the disk cache, or built once (here from safetensors, or exported by torch
in a child process).

A graph folder (:mod:`.store`) holds ``model.onnx``, the ``tokenizer.json`` transformers runs for the
model and ``meta.json`` (tokenizer facts, inputs, the build's measured error). It is trusted by the
content hash of the model folder's files plus the library versions, both taken at build time: no torch
probe runs when a later process loads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from st_plugins.core.runtime import store
from st_plugins.core.runtime.session import OrtRunner
from st_plugins.core.runtime.tokenizer import TextTokenizer, TokenizerFacts
from st_plugins.errors import BackendError

__all__ = ["Graph", "variant", "find_graph", "build_in_child", "build_graph_folder", "load_graph", "open_graph",
           "GRAPH_BACKENDS"]

GRAPH_BACKENDS = {"bi": ("onnx", "int8"), "cross": ("onnx",)}
_OPEN: dict[Path, Graph] = {}
_OPEN_LOCK = threading.Lock()


def variant(kind: str, backend: str) -> str:
    """The artifact name of a model kind and backend.

    Example:
        >>> variant("bi", "int8")
        'bi-int8'
    """
    return f"{kind}-{backend}"


class Graph:
    """A cached graph: its ONNX Runtime runner and its tokenizer (no torch, no transformers).

    Args:
        folder: The artifact folder.
        num_threads: ONNX Runtime threads (default: the user's setting, read at each call).
    """

    def __init__(self, folder: Path, num_threads: int | None = None) -> None:
        self.folder = Path(folder)
        self.meta = store.read_meta(self.folder)
        self.runner = OrtRunner(self.folder / "model.onnx", num_threads, optimized=bool(self.meta.get("optimized")))

    @property
    def facts(self) -> TokenizerFacts:
        return TokenizerFacts.from_json(self.meta["tokenizer"])

    def tokenizer(self, max_length: int | None = None) -> TextTokenizer:
        """The model's tokenizer, as transformers had it when the graph was built."""
        text = (self.folder / "tokenizer.json").read_text(encoding="utf-8")
        return TextTokenizer(text, self.facts, max_length or self.facts.model_max_length)

    def __repr__(self) -> str:
        return f"Graph({str(self.folder)!r})"


def open_graph(folder: Path) -> Graph:
    """The process-wide :class:`Graph` of a cached artifact: one session per graph, however many encoders
    (a Chroma function and a LangChain adapter with other settings, say) use the model."""
    folder = Path(folder)
    with _OPEN_LOCK:
        if folder not in _OPEN:
            _OPEN[folder] = Graph(folder)
        return _OPEN[folder]


def find_graph(root: Path, kind: str, backend: str) -> Path | None:
    """The complete cached artifact of ``root`` for ``backend``, else ``None``."""
    target = store.artifact_dir(store.content_hash(root), variant(kind, backend))
    return target if store.is_complete(target) else None


def build_in_child(root: Path, kind: str, backend: str, allow_pickle: bool = False, quiet: bool = False) -> Path:
    """Export the graph with torch in a child process (it imports torch; this process does not).

    Raises:
        BackendError: The build failed (the child's last error line is included).
    """
    cmd = [sys.executable, "-m", "st_plugins.cli", "build-graph", str(root), "--kind", kind, "--backend", backend,
           "--builder", "export", "--quiet"] + (["--allow-pickle"] if allow_pickle else [])
    if not quiet:
        print(f"st_plugins: building the {backend} graph of {root} once for this machine "
              f"(cached under {store.backends_dir()}) ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    env = os.environ.copy()  # the child imports this very st_plugins, however this process found it
    package_parent = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise BackendError(f"Building the {backend!r} graph of {root} failed: {last}")
    if not quiet:
        print(f"st_plugins: graph built in {time.perf_counter() - start:.1f} s.", file=sys.stderr, flush=True)
    return Path(done.stdout.strip().splitlines()[-1])


def load_graph(root: Path, kind: str, backend: str, allow_pickle: bool = False, build: bool = True) -> Graph:
    """The graph of ``root`` for ``backend``: from the cache, else built in a child process.

    Raises:
        BackendError: Not cached and ``build`` is False, or the build failed.
    """
    folder = find_graph(root, kind, backend)
    if folder is None:
        if not build:
            raise BackendError(
                f"{root} has no cached {backend!r} graph; build it with: st-plugins build-graph {root} --kind {kind} "
                f"--backend {backend}"
            )
        folder = build_graph_folder(root, kind, backend, allow_pickle)
    return open_graph(folder)


def build_graph_folder(root: Path, kind: str, backend: str, allow_pickle: bool = False) -> Path:
    """Build ``root``'s graph into the cache: from its safetensors here (no torch) when the builder covers the
    model, else exported with torch in a child process (see :mod:`st_plugins.core.backends.build`).

    Raises:
        MissingDependencyError: The model needs the torch export and torch is not installed.
        BackendError: The build failed.
    """
    from st_plugins.core.backends.build import export_reason, publish_direct

    reason = export_reason(root, kind)
    if reason is None:
        return publish_direct(root, kind, backend)
    from st_plugins.core.extras import torch_installed, torch_missing

    if not torch_installed():
        raise torch_missing(f"The graph of {root} must be exported with torch ({reason})")
    return build_in_child(root, kind, backend, allow_pickle)
