"""What the bi- and the cross-encoder share: the engine choice, the lazy torch engine, nn.Module's API.

An encoder runs on the torch-free runtime (a cached graph) whenever it can: on the CPU, with backend
``auto`` / ``onnx`` / ``int8``, and with weights that are still the folder's. The torch engine loads
only when something needs it: training and ``model(features)``, parameters / ``state_dict`` /
``.to(...)``, a non-CPU device, ``backend="torch"`` or ``"bf16"``, a folder the runtime cannot serve.
Once the torch engine's weights have been handed out (``parameters()``, ``state_dict()``,
``load_state_dict``, ``train()``, ``model(features)``, ``auto_model``, a loss built on the model, ...),
they may change in ways no cheap check sees (a fused optimizer step bumps no version counter), so
from then on ``auto`` runs torch and an explicit ``onnx``/``int8`` serves a private graph keyed by a
hash of the weights' bytes: a stale graph is never served.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from st_plugins.core.backends import check_backend
from st_plugins.core.runtime.graphs import GRAPH_BACKENDS, Graph, load_graph
from st_plugins.core.runtime.tokenizer import TextTokenizer, max_length_rule
from st_plugins.errors import BackendError, InputValueError

__all__ = ["Encoder", "default_device", "onnx_available", "token_limit"]

_DELEGATED = {"parameters", "named_parameters", "buffers", "named_buffers", "modules", "named_modules", "children",
              "named_children", "zero_grad", "requires_grad_", "register_forward_hook", "register_forward_pre_hook",
              "apply", "get_submodule", "get_parameter"}


def default_device() -> str:
    """``"cuda"`` when a GPU is usable, else ``"cpu"``; torch is imported only on a machine with a GPU device node.

    Example:
        >>> default_device() in ("cpu", "cuda")
        True
    """
    torch = sys.modules.get("torch")
    if torch is None and not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=1)
def onnx_available() -> bool:
    """True when onnxruntime can be imported (it is a base dependency; a broken install falls back to torch)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def token_limit(name: str, doc: str) -> property:
    """The encoder's token limit as a settable property named ``name`` (the max-length rule gives its default)."""

    def get(self: Encoder) -> int:
        return self._max_tokens()

    def set_(self: Encoder, value: int) -> None:
        from st_plugins.core.validation import check_positive_int

        self._token_limit = check_positive_int(value, name)

    return property(get, set_, doc=doc)


def _device_type(device: Any) -> str:
    return str(device).split(":", 1)[0]


class Encoder:
    """Base of :class:`~st_plugins.SentenceTransformer` and :class:`~st_plugins.CrossEncoder` (not public)."""

    _kind = "bi"
    _allowed: tuple[str, ...] = ()

    def _setup(self, root: Path, backend: str, device: str | None, served: bool, allow_pickle: bool) -> None:
        """Choose the first engine; ``served``: the runtime can serve this folder's weights as loaded."""
        from st_plugins.core.backbone import check_remote_code, check_weights

        check_weights(self._transformer_path(), allow_pickle)  # refuse unsafe files before any engine is chosen
        check_remote_code(self._transformer_path(), self.spec.config, self._load_settings[2])
        self._root, self._allow_pickle, self._served = Path(root), allow_pickle, served
        from st_plugins.core.validation import check_device

        try:
            checked = check_device(device)
        except InputValueError:
            self._device = str(device)
            self._checked_backend(backend)  # a runtime backend off the CPU: that rule says more
            raise
        self._device = str(checked or default_device())
        self._backend = self._checked_backend(backend)
        self._torch: Any = None
        self._exposed = False  # the torch engine's weights were handed out: they may differ from the folder's
        self._graphs: dict[Any, Graph] = {}
        self._engines: dict[Any, Any] = {}
        self._copies: dict[str, tuple[str, Any]] = {}
        self._lock = threading.RLock()
        if self._graph() is None:
            self._torch_module()

    def _checked_backend(self, backend: str) -> str:
        """The canonical backend name; graph backends need the CPU."""
        backend = check_backend(backend, self._allowed)
        if backend in GRAPH_BACKENDS[self._kind] and _device_type(self._device) != "cpu":
            raise InputValueError(
                f"`backend={backend!r}` runs on the CPU only; the model is on {self._device}. "
                "Use backend='torch' or 'bf16' on accelerators, or device='cpu'."
            )
        return backend

    def _transformer_path(self) -> Path:
        return self.spec.transformer_path

    # ----------------------------------------------------------------- engines
    def _graph_backend(self) -> str | None:
        if self._backend == "auto":
            return "onnx" if onnx_available() else None
        return self._backend if self._backend in GRAPH_BACKENDS[self._kind] else None

    def _weights_key(self) -> str:
        """``"folder"`` while the weights cannot have changed, else a hash of their bytes."""
        if not self._exposed:
            return "folder"
        from st_plugins.core.torch_models import weights_digest

        return weights_digest(self._torch_module())

    def _graph(self, device: str | None = None) -> Graph | None:
        """The graph for the next forward on ``device`` (default: the model's), or ``None`` for torch."""
        backend = self._graph_backend()
        if backend is None or _device_type(device or self._device) != "cpu":
            return None
        same = self._served and not self._exposed
        if not same and self._backend == "auto":
            return None
        key = backend if same else (backend, self._weights_key())
        with self._lock:
            if key not in self._graphs:
                try:
                    self._graphs[key] = self._load_graph(backend) if same else self._graph_of_memory(backend)
                except BackendError as exc:
                    if self._backend != "auto":
                        raise
                    warnings.warn(f"st_plugins: the runtime is unavailable for {self._root} ({exc}); using torch.",
                                  RuntimeWarning, stacklevel=4)
                    self._backend = "torch"
                    return None
            return self._graphs[key]

    def _load_graph(self, backend: str) -> Graph:
        from st_plugins.core.backends.build import export_reason

        # torch is loaded anyway and the graph needs its export: export in this process
        if self._torch is not None and export_reason(self._root, self._kind) is not None:
            from st_plugins.core.backends.build import publish_graph
            from st_plugins.core.runtime import store
            from st_plugins.core.runtime.graphs import open_graph, variant

            target = store.artifact_dir(store.content_hash(self._root), variant(self._kind, backend))
            if not store.is_complete(target):
                publish_graph(self._torch, self._torch_tokenizer(), self._kind, backend, target)
            return open_graph(target)
        return load_graph(self._root, self._kind, backend, self._allow_pickle)

    def _graph_of_memory(self, backend: str) -> Graph:
        """An explicit ``onnx``/``int8`` with weights that are not the folder's: a private export of them."""
        import tempfile

        from st_plugins.core.backends.build import publish_graph
        from st_plugins.core.runtime.graphs import variant

        self._tmp = getattr(self, "_tmp", None) or tempfile.TemporaryDirectory(prefix="st_plugins-")
        target = Path(self._tmp.name) / f"{variant(self._kind, backend)}-{len(self._graphs)}"
        return Graph(publish_graph(self._torch_module(), self._torch_tokenizer(), self._kind, backend, target))

    def _engine(self, device: str | None = None) -> tuple[Any, Any]:
        """``(engine, tokenizer)`` for the next call on ``device``."""
        device = str(device or self._device)
        graph = self._graph(device)
        if graph is not None:
            return self._graph_engine(graph), self._tokenizer_for(graph)
        from st_plugins.core.torch_models import TorchEngine, on_device

        module = self._torch_module()
        if device != self._device:
            key = self._weights_key()
            cached = self._copies.get(device)
            if cached is None or cached[0] != key:  # the shared model stays where it is
                self._copies[device] = cached = (key, on_device(module, device))
            module = cached[1]
        return TorchEngine(module, device, bf16=self._backend == "bf16"), self._torch_tokenizer()

    # ----------------------------------------------------------------- the tokenizer (one for every engine)
    def _tokenizer_for(self, graph: Graph) -> TextTokenizer:
        """The graph's tokenizer (transformers' own, saved at build time), unless ``tokenizer_kwargs`` ask for
        another one, which transformers then builds."""
        if self._load_settings[4]:
            return self._torch_tokenizer()
        if graph.folder not in self._tokenizers:
            self._tokenizers[graph.folder] = graph.tokenizer()
        return self._prepared(self._tokenizers[graph.folder])

    def _torch_tokenizer(self) -> TextTokenizer:
        if "runtime" not in self._tokenizers:
            self._tokenizers["runtime"] = TextTokenizer.from_transformers(self.tokenizer, lowercase=self.spec.do_lower_case)
        return self._prepared(self._tokenizers["runtime"])

    def _prepared(self, tokenizer: TextTokenizer) -> TextTokenizer:
        """``tokenizer`` truncating at the model's token limit (the max-length rule, applied once)."""
        if self._token_limit is None:
            self._token_limit = max_length_rule(self._explicit_max, self.spec.max_seq_length,
                                                tokenizer.facts.model_max_length,
                                                self.spec.config.get("max_position_embeddings"))
        if tokenizer.max_length != self._token_limit:
            tokenizer.max_length = self._token_limit
        return tokenizer

    def _max_tokens(self) -> int:
        if self._token_limit is None:
            self._engine()
        return self._token_limit

    @property
    def tokenizer(self) -> Any:
        """The transformers tokenizer (imports transformers; encoding uses the runtime's own)."""
        if "transformers" not in self._tokenizers:
            from st_plugins.core.backbone import load_tokenizer

            _, _, trust_remote_code, _, tokenizer_kwargs = self._load_settings
            self._tokenizers["transformers"] = load_tokenizer(self.spec.transformer_path, None, trust_remote_code,
                                                              tokenizer_kwargs)
        return self._tokenizers["transformers"]

    # ----------------------------------------------------------------- the torch engine
    def _torch_module(self) -> Any:
        """The torch engine, loaded on first need (internal use: its weights stay the folder's)."""
        with self._lock:
            if self._torch is None:
                from st_plugins.core.extras import torch_installed, torch_missing

                if not torch_installed():
                    raise torch_missing(f"This needs the torch engine of {self._root} (training, parameters or "
                                        "state_dict, a non-CPU device, backend 'torch' or 'bf16', or a folder the "
                                        "runtime cannot serve)")
                module = self._load_torch()
                if _device_type(self._device) != "cpu":
                    module.to(self._device)
                self._torch = module
            return self._torch

    def _handed_out(self) -> Any:
        """The torch engine for a caller who may change its weights (see the module docstring)."""
        self._exposed = True
        return self._torch_module()

    @property
    def graph(self) -> Graph | None:
        """The runtime graph the next forward on the model's device runs (``None``: the torch engine runs)."""
        return self._graph()

    @property
    def backend(self) -> str:
        """The inference backend (settable): ``auto``, ``torch``, ``onnx``, ``bf16``, ``int8`` (bi-encoders)."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = self._checked_backend(value)

    @property
    def device(self) -> Any:
        """The model's device, as a ``torch.device`` (imports torch); its name (``"cpu"``) without torch installed."""
        from st_plugins.core.extras import torch_installed

        if not torch_installed():
            return self._device
        import torch

        return torch.device(self._device)

    @property
    def training(self) -> bool:
        return bool(self._torch is not None and self._torch.training)

    def train(self, mode: bool = True) -> Encoder:
        self._handed_out().train(mode)
        return self

    def eval(self) -> Encoder:
        if self._torch is not None:
            self._torch.eval()
        return self

    def to(self, *args: Any, **kwargs: Any) -> Encoder:
        """Move (or cast) the torch engine, as ``nn.Module.to``; the model's device follows."""
        module = self._handed_out().to(*args, **kwargs)
        self._device = str(next(module.parameters()).device)
        return self

    def cpu(self) -> Encoder:
        return self.to("cpu")

    def cuda(self, device: Any = None) -> Encoder:
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self._handed_out().state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        return self._handed_out().load_state_dict(state_dict, strict=strict, assign=assign)

    def __call__(self, features: dict[str, Any]) -> Any:
        return self.forward(features)

    def forward(self, features: dict[str, Any]) -> Any:
        """The differentiable torch forward (training); see the subclasses."""
        return self._handed_out()(features)

    def __getattr__(self, name: str) -> Any:
        if name in _DELEGATED:
            return getattr(self._handed_out(), name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:  # sessions, locks and temp folders are not copied or pickled
        state = {k: v for k, v in self.__dict__.items() if k not in ("_graphs", "_engines", "_lock", "_tmp", "_copies")}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._graphs, self._engines, self._copies, self._lock = {}, {}, {}, threading.RLock()
