"""The safetensors graph builder (no torch in the builder): same outputs as transformers' eager fp32 forward.

Tiny random models of every covered architecture are built once for the module (hidden 32, 2 layers, 4 heads,
intermediate 37, vocab 100, initializer range 0.2), as ``AutoModel`` (bi) and ``*ForSequenceClassification``
(cross, 1 and 3 labels), and compared on a padded batch (lengths 1 .. full, token types with 1s where the model
has them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from st_plugins.core.backends.builder import BUILT_TYPES, build_graph, unsupported_reason  # noqa: E402
from st_plugins.errors import ModelFormatError  # noqa: E402

TOLERANCE = 1e-5
VOCAB = 100
LENGTHS = (12, 1, 5, 9, 12, 3)  # batch of 6, padded to 12: length 1 and full included
ARCHS = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "mpnet")
NO_TOKEN_TYPES = ("distilbert", "mpnet")
TOKEN_TYPES = ("bert", "electra")  # fed with some 1s; RoBERTa-style models have a single token type
CLASSES = {"bert": "Bert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta", "distilbert": "DistilBert",
           "electra": "Electra", "mpnet": "MPNet"}


def _config(arch: str, num_labels: int | None = None):
    # initializer_range 0.2 (not 0.02): attention far from uniform and logits of order 1, so a wrong mask,
    # position or head shows up far above the tolerance
    common = {"vocab_size": VOCAB, "max_position_embeddings": 64, "initializer_range": 0.2,
              "attn_implementation": "eager"}
    if num_labels is not None:
        common["num_labels"] = num_labels
    if arch == "distilbert":
        return transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=37, **common)
    sizes = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37}
    if arch in ("roberta", "xlm-roberta"):
        sizes.update(type_vocab_size=1, pad_token_id=1)
    if arch == "electra":
        sizes.update(embedding_size=16)
    return getattr(transformers, f"{CLASSES[arch]}Config")(**sizes, **common)


def _save(model, folder: Path, dtype=None) -> Path:
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[tuple[str, object], Path]:
    """``(arch, "bi" | num_labels | "fp16" | "bf16") -> folder``, every model seeded by its own key."""
    root = tmp_path_factory.mktemp("builder_models")
    out = {}
    for n, arch in enumerate(ARCHS):
        torch.manual_seed(n)
        out[arch, "bi"] = _save(transformers.AutoModel.from_config(_config(arch)), root / f"{arch}_bi")
        for labels in (1, 3):
            torch.manual_seed(100 * labels + n)
            cls = getattr(transformers, f"{CLASSES[arch]}ForSequenceClassification")
            out[arch, labels] = _save(cls(_config(arch, labels)), root / f"{arch}_cross{labels}")
    for n, dtype in enumerate((torch.float16, torch.bfloat16)):
        torch.manual_seed(1000 + n)
        name = str(dtype).split(".")[-1]
        out["bert", name] = _save(transformers.BertModel(_config("bert")), root / f"bert_{name}", dtype)
    return out


def _feeds(arch: str, token_types: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    pad = 1 if arch in ("roberta", "xlm-roberta", "mpnet") else 0
    width = max(LENGTHS)
    mask = (np.arange(width)[None, :] < np.array(LENGTHS)[:, None]).astype(np.int64)
    ids = np.where(mask == 1, rng.integers(5, VOCAB, size=mask.shape), pad).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask}
    if token_types and arch not in NO_TOKEN_TYPES:
        second = (np.arange(width)[None, :] >= (np.array(LENGTHS)[:, None] + 1) // 2) & (mask == 1)
        feeds["token_type_ids"] = (second if arch in TOKEN_TYPES else np.zeros_like(mask)).astype(np.int64)
    return feeds


def _reference(folder: Path, kind: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
    cls = transformers.AutoModel if kind == "bi" else transformers.AutoModelForSequenceClassification
    model = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.inference_mode():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    return (out.last_hidden_state if kind == "bi" else out.logits).numpy()


def _run(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})[0]


def _max_diff(got: np.ndarray, want: np.ndarray, mask: np.ndarray) -> float:
    assert got.shape == want.shape
    diff = np.abs(got - want)
    return float((diff * mask[..., None] if diff.ndim == 3 else diff).max())


def _check(folder: Path, kind: str, feeds: dict[str, np.ndarray], tmp_path: Path, name: str = "model") -> float:
    path = tmp_path / f"{name}.onnx"
    meta = build_graph(folder, kind, path, tuple(feeds))
    assert meta["builder"] == "safetensors" and meta["opset"] == 17 and meta["fused"] == []
    got, want = _run(path, feeds), _reference(folder, kind, feeds)
    diff = _max_diff(got, want, feeds["attention_mask"])
    assert diff <= TOLERANCE, f"{folder.name}: max |diff| {diff:.2e}"
    return diff


def test_builder_covers_the_listed_types():
    assert set(BUILT_TYPES) == set(ARCHS)


@pytest.mark.parametrize("arch", ARCHS)
def test_builder_bi_matches_transformers(folders, tmp_path, arch):
    _check(folders[arch, "bi"], "bi", _feeds(arch), tmp_path)
    if arch not in NO_TOKEN_TYPES:  # token_type_ids absent: zeros
        _check(folders[arch, "bi"], "bi", _feeds(arch, token_types=False), tmp_path, "no_token_types")


@pytest.mark.parametrize("labels", [1, 3])
@pytest.mark.parametrize("arch", ARCHS)
def test_builder_cross_matches_transformers(folders, tmp_path, arch, labels):
    folder = folders[arch, labels]
    assert unsupported_reason(json.loads((folder / "config.json").read_text()), "cross") is None
    _check(folder, "cross", _feeds(arch), tmp_path)


def test_builder_ignores_token_types_of_models_without_them(folders, tmp_path):
    feeds = {**_feeds("distilbert"), "token_type_ids": np.zeros((len(LENGTHS), max(LENGTHS)), dtype=np.int64)}
    path = tmp_path / "distilbert.onnx"
    build_graph(folders["distilbert", "bi"], "bi", path, tuple(feeds))
    want = _reference(folders["distilbert", "bi"], "bi", _feeds("distilbert"))
    assert _max_diff(_run(path, feeds), want, feeds["attention_mask"]) <= TOLERANCE


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_builder_reads_half_precision_weights(folders, tmp_path, dtype):
    _check(folders["bert", dtype], "bi", _feeds("bert"), tmp_path)


def test_builder_graph_shape(folders, tmp_path):
    """Linear layers are MatMul(x, initializer [in, out]) + Add (what the int8 quantizer looks for); names unique."""
    import onnx

    path = tmp_path / "bert.onnx"
    build_graph(folders["bert", 3], "cross", path, ("input_ids", "attention_mask", "token_type_ids"))
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    inits = {i.name: tuple(i.dims) for i in model.graph.initializer}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    assert len(matmuls) == 2 * 6 + 2  # q, k, v, o, up, down per layer; pooler; classifier
    assert inits[matmuls[4].input[1]] == (32, 37) and inits[matmuls[5].input[1]] == (37, 32)
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == len(names) and all(names)
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input]
    assert dims == [["batch", "sequence"]] * 3
    assert [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == ["batch", 3]


def test_builder_mpnet_buckets_match_transformers():
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

    from st_plugins.core.backends.builder import mpnet_buckets

    relative = np.arange(-1100, 1100)
    want = MPNetEncoder.relative_position_bucket(torch.from_numpy(relative)).numpy()
    assert np.array_equal(mpnet_buckets(relative), want)


# ----------------------------------------------------------------------------- the packaged all-MiniLM-L6-v2
SENTENCES = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "A man is eating pasta.",
    "Ünïcödé text with émojis 🙂 and CJK 漢字.",
    "Short.",
    "A cheetah is running behind its prey, across the dry savanna, while the herd scatters in every direction.",
    "word " * 60,
]


@pytest.fixture(scope="module")
def minilm(tmp_path_factory, minilm_path):
    """(graph path, tokenizer) of the packaged all-MiniLM-L6-v2, built once."""
    path = tmp_path_factory.mktemp("minilm") / "model.onnx"
    meta = build_graph(minilm_path, "bi", path, ("input_ids", "attention_mask", "token_type_ids"))
    assert meta["model_type"] == "bert"
    return path, transformers.AutoTokenizer.from_pretrained(minilm_path)


def _encode(tokenizer, texts: list[str]) -> dict[str, np.ndarray]:
    return {k: v.astype(np.int64) for k, v in tokenizer(texts, padding=True, truncation=True, max_length=128,
                                                        return_tensors="np").items()}


def test_builder_minilm_matches_transformers(minilm, minilm_path):
    path, tokenizer = minilm
    feeds = _encode(tokenizer, SENTENCES)
    assert feeds["attention_mask"].min() == 0  # padding in the batch
    want = _reference(minilm_path, "bi", feeds)
    assert _max_diff(_run(path, feeds), want, feeds["attention_mask"]) <= TOLERANCE


def test_builder_minilm_graph_quantizes(minilm, tmp_path):
    from st_plugins.core.backends.quantize import MIN_COSINE, quantize_int8
    from tests.conftest import SENTENCES as MORE

    path, tokenizer = minilm
    texts = SENTENCES + [t for t in MORE if t.strip()]
    probes = [_encode(tokenizer, texts[s : s + 8]) for s in range(0, len(texts), 8)]
    reference = [_run(path, feeds) for feeds in probes]
    meta = quantize_int8(path, tmp_path / "int8.onnx", probes, reference)
    assert meta["scheme"] and meta["min_cosine"] >= MIN_COSINE >= 0.995
    assert (tmp_path / "int8.onnx").is_file()


# ----------------------------------------------------------------------------- what it refuses
@pytest.mark.parametrize("change, words", [
    ({"model_type": "gpt2"}, "model type 'gpt2'"),
    ({"position_embedding_type": "relative_key"}, "relative_key"),
    ({"hidden_act": "weird"}, "'weird'"),
    ({"is_decoder": True}, "is_decoder"),
    ({"num_attention_heads": 5}, "multiple"),
])
def test_builder_unsupported_reason(change, words):
    config = {"model_type": "bert", "hidden_size": 32, "num_attention_heads": 4, "vocab_size": VOCAB}
    assert unsupported_reason(config, "bi") is None
    reason = unsupported_reason({**config, **change}, "bi")
    assert reason and words in reason


def test_builder_unsupported_cross_head():
    config = {"model_type": "bert", "hidden_size": 32, "num_attention_heads": 4}
    assert "BertForMaskedLM" in unsupported_reason({**config, "architectures": ["BertForMaskedLM"]}, "cross")
    assert unsupported_reason({**config, "architectures": ["BertForMaskedLM"]}, "bi") is None
    assert unsupported_reason(config, "cross") is None  # picked by model type
    assert unsupported_reason({**config, "model_type": "distilbert", "activation": "weird"}, "bi")


def test_builder_truncated_weights_raise_naming_the_file(folders, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    source = folders["bert", "bi"]
    (folder / "config.json").write_bytes((source / "config.json").read_bytes())
    data = (source / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="model.safetensors"):
        build_graph(folder, "bi", tmp_path / "out.onnx", ("input_ids", "attention_mask"))
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelFormatError, match="model.safetensors"):
        build_graph(folder, "bi", tmp_path / "out.onnx", ("input_ids", "attention_mask"))


def test_builder_missing_weight_raises_naming_the_file(folders, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "partial"
    folder.mkdir()
    source = folders["electra", "bi"]
    (folder / "config.json").write_bytes((source / "config.json").read_bytes())
    tensors = load_file(str(source / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if "layer.1.output.dense" not in k}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"model\.safetensors.*layer\.1\.output\.dense"):
        build_graph(folder, "bi", tmp_path / "out.onnx", ("input_ids", "attention_mask"))
    config = json.loads((source / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 40}))
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match="shape"):
        build_graph(folder, "bi", tmp_path / "out.onnx", ("input_ids", "attention_mask"))


def test_builder_nan_weight_raises_naming_the_weight(folders, tmp_path):
    """A checkpoint with a NaN weight is refused while building (the graph is not run at build time)."""
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "nan"
    folder.mkdir()
    source = folders["bert", "bi"]
    (folder / "config.json").write_bytes((source / "config.json").read_bytes())
    tensors = load_file(str(source / "model.safetensors"))
    name = next(k for k in tensors if "layer.1.intermediate.dense.weight" in k)
    tensors[name][3, 4] = np.nan
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"model\.safetensors.*layer\.1\.intermediate\.dense\.weight.*NaN"):
        build_graph(folder, "bi", tmp_path / "out.onnx", ("input_ids", "attention_mask"))


def test_builder_streamed_file_parses_as_the_whole_message(tmp_path):
    """write_model streams the initializers after the rest of the graph; a protobuf parser reads the same message
    as ``SerializeToString`` of the model holding them (fields after the graph, such as opset_import, included)."""
    from st_plugins.core.backends import _proto

    pb = _proto.messages()
    rng = np.random.default_rng(3)
    arrays = [("w", rng.standard_normal((5, 3)).astype(np.float32), True), ("ids", np.arange(4), False),
              ("scalar", np.asarray(np.float32(0.5)), False), ("empty", np.zeros((0, 2), np.float32), False)]
    model = pb.ModelProto(ir_version=8, producer_name="test")
    model.graph.name = "g"
    model.graph.node.append(_proto.node("MatMul", ["x", "w"], ["y"], name="mm"))
    model.graph.input.append(_proto.value_info("x", pb.TensorProto.FLOAT, ["batch", 5]))
    model.opset_import.append(_proto.opset("", 17))
    whole = pb.ModelProto()
    whole.CopyFrom(model)
    whole.graph.initializer.extend(_proto.tensor(np.ascontiguousarray(a.T) if t else a, n) for n, a, t in arrays)
    written = _proto.write_model(tmp_path / "m.onnx", model, arrays)
    data = (tmp_path / "m.onnx").read_bytes()
    assert written == len(data) == len(whole.SerializeToString())
    assert pb.ModelProto.FromString(data) == whole
