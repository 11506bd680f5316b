"""Unsafe or broken model folders: each is a typed error naming the file and the way out, on every engine.

The default path (the runtime's graph) and ``backend="torch"`` must refuse the same folders with the same
error, before any weights load, for the bi-encoder and the cross-encoder alike.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from st_plugins import CrossEncoder, SentenceTransformer
from st_plugins.errors import ModelFormatError, UnsafeCheckpointError

BACKENDS = ["auto", "torch"]


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(folder, target)
    return target


def _weights(folder: Path) -> Path:
    return next(folder.rglob("model.safetensors"))


def _truncate(folder: Path) -> Path:
    path = _weights(folder)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    return path


def _garble_header(folder: Path) -> Path:
    path = _weights(folder)
    data = bytearray(path.read_bytes())
    data[8:20] = b"not a header"
    path.write_bytes(bytes(data))
    return path


def _write(name: str, text: str):
    def mutate(folder: Path) -> Path:
        path = next(folder.rglob(name)) if name != "modules.json" else folder / name
        path.write_text(text)
        return path

    return mutate


def _auto_map(folder: Path) -> Path:
    path = next(p for p in folder.rglob("config.json") if "model_type" in json.loads(p.read_text()))
    config = json.loads(path.read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    path.write_text(json.dumps(config))
    return path


def _load(kind: str, folder: Path, backend: str, **kwargs):
    if kind == "bi":
        return SentenceTransformer(str(folder), device="cpu", backend=backend, **kwargs).encode(["a test"])
    return CrossEncoder(str(folder), device="cpu", backend=backend, **kwargs).predict([("a", "test")])


@pytest.fixture(params=["bi", "cross"])
def folder(request, make_st_folder, make_cross_folder, tmp_path):
    source = make_st_folder() if request.param == "bi" else make_cross_folder("bert", 1)
    return request.param, _copy(source, tmp_path)


CASES = {
    "truncated safetensors": (_truncate, ModelFormatError, r"is truncated or corrupt: its header describes \d+ bytes, "
                                                           r"the file has \d+\. Download or save the model again"),
    "garbled safetensors header": (_garble_header, ModelFormatError, "is not a readable safetensors file"),
    "config.json not JSON": (_write("config.json", "{not json"), ModelFormatError, "is not valid JSON .*Repair or re-save"),
    "config.json a list": (_write("config.json", "[1, 2]"), ModelFormatError, "must hold a JSON object"),
    "remote code asked for": (_auto_map, UnsafeCheckpointError,
                              r"asks for custom model code \(auto_map: AutoModel -> modeling_custom.CustomModel\).*"
                              "trust_remote_code=True"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_folder_is_a_typed_error_naming_the_file(folder, case, backend):
    kind, root = folder
    mutate, error, pattern = CASES[case]
    path = mutate(root)
    with pytest.raises(error, match=pattern) as info:
        _load(kind, root, backend)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"type": "Pooling"}'])
def test_broken_modules_json_is_a_typed_error(make_st_folder, tmp_path, backend, text):
    root = _copy(make_st_folder(), tmp_path)
    (root / "modules.json").write_text(text)
    with pytest.raises(ModelFormatError, match="modules.json .*(not valid JSON|must hold a list of objects)") as info:
        _load("bi", root, backend)
    assert str(root / "modules.json") in str(info.value)


def test_remote_code_loads_once_trusted(make_st_folder, tmp_path):
    """The refusal is the only change: trusted, the folder loads (transformers' own class serves its model_type)."""
    root = _copy(make_st_folder(), tmp_path)
    config = _auto_map(root)
    (config.parent / "modeling_custom.py").write_text(
        "from transformers import BertModel\n\n\nclass CustomModel(BertModel):\n    pass\n")
    reference = SentenceTransformer(str(make_st_folder()), device="cpu").encode(["a test"])
    got = SentenceTransformer(str(root), device="cpu", trust_remote_code=True).encode(["a test"])
    assert abs(got - reference).max() < 1e-6


@pytest.mark.parametrize("kind", ["bi", "cross"])
def test_pickle_only_folder_is_refused_unless_allowed(kind, make_st_folder, make_cross_folder, tmp_path):
    import torch
    from safetensors.torch import load_file

    source = make_st_folder() if kind == "bi" else make_cross_folder("bert", 1)
    root = _copy(source, tmp_path)
    weights = _weights(root)
    torch.save(load_file(weights), weights.with_name("pytorch_model.bin"))
    weights.unlink()
    for backend in BACKENDS:
        with pytest.raises(UnsafeCheckpointError, match="only has a pickle checkpoint.*allow_pickle=True"):
            _load(kind, root, backend)
    got = _load(kind, root, "torch", allow_pickle=True)
    expected = _load(kind, source, "torch")
    assert abs(got - expected).max() < 1e-6


def test_dense_activation_outside_torch_is_refused_unless_trusted(make_st_folder, tmp_path):
    root = _copy(make_st_folder(dense=((16, "torch.nn.modules.activation.Tanh"),)), tmp_path)
    dense = next(p for p in root.iterdir() if p.name.endswith("Dense"))
    config = json.loads((dense / "config.json").read_text())
    config["activation_function"] = "tests.factories.Doubled"
    (dense / "config.json").write_text(json.dumps(config))
    for backend in BACKENDS:
        with pytest.raises((ModelFormatError, UnsafeCheckpointError), match="trust_remote_code=True") as info:
            _load("bi", root, backend)
        assert "tests.factories.Doubled" in str(info.value) and dense.name in str(info.value)


def test_residual_dense_is_refused_not_served_wrong(make_st_folder, tmp_path):
    """sentence-transformers 6's ``Dense(use_residual=True)`` adds the input back: unsupported, so refused."""
    root = _copy(make_st_folder(dense=((32, "torch.nn.modules.activation.Tanh"),)), tmp_path)
    dense = next(p for p in root.iterdir() if p.name.endswith("Dense"))
    config = json.loads((dense / "config.json").read_text())
    config["use_residual"] = True
    (dense / "config.json").write_text(json.dumps(config))
    for backend in BACKENDS:
        with pytest.raises(ModelFormatError, match="use_residual") as info:
            _load("bi", root, backend)
        assert str(dense / "config.json") in str(info.value)
