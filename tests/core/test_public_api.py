"""The public API is pinned and `import st_plugins` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import st_plugins

HEAVY = ["torch", "transformers", "chromadb", "sklearn", "langchain_core", "numpy", "sentence_transformers"]


def test_public_api_names_are_pinned():
    assert st_plugins.__all__ == [
        "__version__", "SentenceTransformer", "CrossEncoder", "SimilarityFunction", "get_model", "util",
        "StPluginsError", "InputTypeError", "InputValueError", "ModelNotFoundError", "ModelFormatError",
        "UnsafeCheckpointError", "MissingDependencyError", "BackendError", "DataNotFoundError",
        "StoreUnavailableError",
    ]


def test_public_api_import_is_light():
    code = f"import st_plugins, st_plugins.util, sys, json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_api_errors_subclass_builtins():
    assert issubclass(st_plugins.InputTypeError, TypeError)
    assert issubclass(st_plugins.InputValueError, ValueError)
    assert issubclass(st_plugins.ModelNotFoundError, OSError)
    assert issubclass(st_plugins.MissingDependencyError, ImportError)
    assert issubclass(st_plugins.BackendError, RuntimeError)
    assert issubclass(st_plugins.DataNotFoundError, FileNotFoundError)
    assert issubclass(st_plugins.StoreUnavailableError, ConnectionError)
    for name in st_plugins.__all__[6:]:
        assert issubclass(getattr(st_plugins, name), st_plugins.StPluginsError)
