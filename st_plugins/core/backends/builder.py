"""config.json + model.safetensors -> ONNX inference graph, without torch or transformers.

:func:`build_graph` writes the fp32 graph of a transformers encoder (one ``.onnx`` file, weights inside,
opset 17) with onnx's protobuf messages (:mod:`._proto`, without importing the ``onnx`` package) and
numpy, for the model types in :data:`BUILT_TYPES`:

* ``bert`` (MiniLM too), ``roberta``, ``xlm-roberta``, ``electra`` (``embeddings_project`` when
  ``embedding_size != hidden_size``), ``distilbert`` (stored position table; sinusoidal when it is
  missing and ``sinusoidal_pos_embds``) and ``mpnet`` (relative position bias, bucketed exactly as
  ``MPNetEncoder.compute_position_bias`` does: 32 buckets, max distance 128, float32 arithmetic).
* ``kind="bi"``: output ``token_embeddings`` = ``last_hidden_state`` ``[batch, sequence, hidden]``.
* ``kind="cross"``: output ``logits`` ``[batch, num_labels]`` of the ``*ForSequenceClassification``
  head named by ``config["architectures"][0]`` (else the model type's): BERT pooler (dense + tanh on
  token 0) + classifier; RoBERTa / XLM-R / MPNet ``classifier.dense`` + tanh + ``classifier.out_proj``;
  DistilBERT ``pre_classifier`` + ReLU + ``classifier``; ELECTRA ``classifier.dense`` + exact GELU +
  ``classifier.out_proj``.

The graph is what transformers' eager float32 forward computes (max |diff| ~1e-6 on tiny random models
and on all-MiniLM-L6-v2), with three exact rewrites: the additive mask ``(1 - mask) * finfo(float32).min``
(plus MPNet's position bias) is computed once per batch for all layers; absolute positions are a ``Slice``
of the position table (RoBERTa-style models: ``cumsum(ids != pad) * (ids != pad) + pad``); under a
classification head the last layer computes token 0 only (its keys and values still come from every
token): the cross-encoder graph of all-MiniLM-L6-v2 runs 1.17x (short) / 1.11x (passages) faster, same
logits. The attention scale ``1/sqrt(head_dim)`` multiplies the scores as in transformers: folded into the
query weights it shifted the int8 smoothing (STS min cosine 0.9889 instead of 0.9933).

Every linear layer is ``MatMul(x, W.T)`` with ``W.T`` an ``[in, out]`` initializer, then ``Add(bias)``, the
form :mod:`.quantize` looks for. GELU is ``x * 0.5 * (1 + erf(x / sqrt 2))`` (tanh form for
``gelu_new`` / ``gelu_pytorch_tanh``), LayerNorm the opset-17 ``LayerNormalization``.

No com.microsoft ops (``"fused": []``). ONNX Runtime's extended optimization (at session start for a
built graph) turns this graph's MatMul + Add + Erf-GELU into
MatMul + BiasGelu and the scores' MatMul + Mul into FusedMatMul (it leaves Add + LayerNormalization and
the attention unfused, on this graph as on the torch export). Emitted by hand, and compared after that
optimization on all-MiniLM-L6-v2 (2-core CPU, interleaved rounds, 1 and 2 threads; short = batch 32 of
8-16 tokens, passages = batch 16 of 128-256 tokens), against the plain graph:

* SkipLayerNormalization for every residual Add + LayerNorm: 0.89-0.94x short, 0.95-0.96x passages;
* MultiHeadAttention (projected Q/K/V in, the mask as attention bias): 0.96-0.98x, 1.00-1.03x (noise);
* both: 0.88-0.90x, 0.96-0.98x; one fused Q/K/V MatMul + Split: 0.97-1.03x, 0.97-0.99x (noise).

All stayed within 1e-5 of transformers, none paid, and a fused ``Attention`` op (weights inside) would
hide the Q/K/V projections from the int8 quantizer: the graph stays plain. Against the torch export of
the same model, each loaded and run as the runtime does (benchmarks/graph_builders.py), it runs at
0.99-1.02x (short) and 0.98-1.00x (passages) in the same interleaved runs, with bitwise-equal outputs and
equal kernel time in ONNX Runtime's profile (after fusion the graphs compute the same ops).

Memory: the safetensors file is memory-mapped (float32 weights are views of it) and
:func:`._proto.write_model` streams each initializer into the file after the rest of the graph, so the
weights exist once (the page cache) while the graph is written: building all-MiniLM-L6-v2 peaks at
+83 MiB, where serializing one complete ``ModelProto`` took +300 MiB (weights, their protobuf copy,
the serialized bytes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.errors import BackendError, ModelFormatError

__all__ = ["BUILT_TYPES", "unsupported_reason", "build_graph"]

BUILT_TYPES: tuple[str, ...] = ("bert", "roberta", "xlm-roberta", "distilbert", "electra", "mpnet")
OPSET = 17
KINDS = ("bi", "cross")
FEEDS = ("input_ids", "attention_mask", "token_type_ids")

_PREFIX = {"bert": "bert", "roberta": "roberta", "xlm-roberta": "roberta", "distilbert": "distilbert",
           "electra": "electra", "mpnet": "mpnet"}
_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")
#: ``*ForSequenceClassification`` class -> head kind.
_HEADS = {"BertForSequenceClassification": "pooler", "RobertaForSequenceClassification": "dense_tanh",
          "XLMRobertaForSequenceClassification": "dense_tanh", "MPNetForSequenceClassification": "dense_tanh",
          "DistilBertForSequenceClassification": "pre_classifier", "ElectraForSequenceClassification": "dense_gelu"}
_DEFAULT_HEAD = {"bert": "pooler", "roberta": "dense_tanh", "xlm-roberta": "dense_tanh", "mpnet": "dense_tanh",
                 "distilbert": "pre_classifier", "electra": "dense_gelu"}
#: transformers' config defaults, for config.json files written without them.
_COMMON = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
           "hidden_act": "gelu", "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "type_vocab_size": 2,
           "position_embedding_type": "absolute"}
_DEFAULTS = {
    "bert": {**_COMMON, "pad_token_id": 0},
    "roberta": {**_COMMON, "pad_token_id": 1},
    "xlm-roberta": {**_COMMON, "pad_token_id": 1},
    "electra": {**_COMMON, "pad_token_id": 0, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024,
                "embedding_size": 128},
    "mpnet": {**_COMMON, "pad_token_id": 1, "relative_attention_num_buckets": 32},
    "distilbert": {"dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072, "activation": "gelu",
                   "max_position_embeddings": 512, "pad_token_id": 0, "sinusoidal_pos_embds": False},
}
_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
                       "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
                       "BOOL": np.bool_}
_MAX_PROTO_BYTES = 2_000_000_000  # a single-file ONNX model is one protobuf: < 2 GiB
_MPNET_BUCKETS, _MPNET_MAX_DISTANCE = 32, 128  # what MPNetEncoder.compute_position_bias uses, whatever the config


# ----------------------------------------------------------------------------- config
class _Dims:
    """The numbers the graph needs, read from a config dict with transformers' defaults."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.model_type = str(config.get("model_type", ""))
        get = {**_DEFAULTS.get(self.model_type, _COMMON), **{k: v for k, v in config.items() if v is not None}}.get
        self.get = get
        if self.model_type == "distilbert":
            self.hidden, self.layers, self.heads = int(get("dim")), int(get("n_layers")), int(get("n_heads"))
            self.intermediate, self.act, self.eps = int(get("hidden_dim")), str(get("activation")), 1e-12
            self.embedding, self.type_vocab = self.hidden, 0
        else:
            self.hidden, self.layers = int(get("hidden_size")), int(get("num_hidden_layers"))
            self.heads, self.intermediate = int(get("num_attention_heads")), int(get("intermediate_size"))
            self.act, self.eps = str(get("hidden_act")), float(get("layer_norm_eps"))
            self.embedding = int(get("embedding_size")) if self.model_type == "electra" else self.hidden
            self.type_vocab = 0 if self.model_type == "mpnet" else int(get("type_vocab_size"))
        self.vocab = int(get("vocab_size")) if get("vocab_size") is not None else None
        self.positions = int(get("max_position_embeddings"))
        self.pad = get("pad_token_id")
        self.head_dim = self.hidden // max(1, self.heads)

    def parameters(self) -> int:
        """About how many float32 weights the encoder has (to refuse graphs over the protobuf limit)."""
        h, e, i = self.hidden, self.embedding, self.intermediate
        emb = ((self.vocab or 0) + self.positions + self.type_vocab) * e
        return emb + e * h + self.layers * (4 * h * h + 2 * h * i + 9 * h + i) + h * h


def _head(config: dict[str, Any], model_type: str) -> tuple[str | None, str]:
    """(head kind or None, the class name it was picked by)."""
    archs = config.get("architectures") or []
    if archs:
        name = str(archs[0])
        return _HEADS.get(name), name
    return _DEFAULT_HEAD.get(model_type), f"{model_type} (no architectures in config.json)"


def unsupported_reason(config: dict, kind: str) -> str | None:
    """``None`` when :func:`build_graph` can build ``config``'s graph for ``kind`` (``"bi"`` or ``"cross"``), else
    a short human reason.

    Example:
        >>> print(unsupported_reason({"model_type": "gpt2"}, "bi"))
        model type 'gpt2' is not covered by the safetensors builder (covered: bert, roberta, ...)
        >>> print(unsupported_reason({"model_type": "bert", "position_embedding_type": "relative_key"}, "bi"))
        position_embedding_type 'relative_key' (only 'absolute' is built)
        >>> unsupported_reason({"model_type": "bert", "hidden_size": 32, "num_attention_heads": 4}, "bi") is None
        True
    """
    if kind not in KINDS:
        return f"kind must be one of {KINDS}, got {kind!r}"
    if not isinstance(config, dict):
        return "config is not a dict"
    model_type = config.get("model_type")
    if model_type not in BUILT_TYPES:
        return (f"model type {model_type!r} is not covered by the safetensors builder "
                f"(covered: {', '.join(BUILT_TYPES)})")
    position = config.get("position_embedding_type") or "absolute"
    if position != "absolute":
        return f"position_embedding_type {position!r} (only 'absolute' is built)"
    for flag in ("is_decoder", "add_cross_attention", "is_encoder_decoder"):
        if config.get(flag):
            return f"config option {flag}=true (decoders are not built)"
    try:
        dims = _Dims(config)
    except (TypeError, ValueError) as exc:
        return f"config.json has a non-numeric size ({exc})"
    if not isinstance(dims.get("hidden_act" if model_type != "distilbert" else "activation"), str):
        return "the activation is not a named function"
    if dims.act not in _ACTIVATIONS:
        return f"activation {dims.act!r} is not built (built: {', '.join(_ACTIVATIONS)})"
    if dims.heads <= 0 or dims.hidden % dims.heads:
        return f"hidden size {dims.hidden} is not a multiple of the {dims.heads} attention heads"
    if model_type in ("roberta", "xlm-roberta") and not isinstance(dims.pad, int):
        return "pad_token_id is missing (RoBERTa positions start after it)"
    if model_type == "mpnet" and int(dims.get("relative_attention_num_buckets")) < _MPNET_BUCKETS:
        return f"relative_attention_num_buckets < {_MPNET_BUCKETS} (MPNet indexes {_MPNET_BUCKETS} buckets)"
    if dims.parameters() * 4 > _MAX_PROTO_BYTES:
        return "the model is too large for a single-file ONNX graph (2 GiB protobuf limit)"
    if kind == "cross":
        head, by = _head(config, model_type)
        if head is None:
            return f"{by} is not a sequence-classification head the builder knows"
        if _head_type(by) not in (None, model_type):
            return f"architecture {by} does not match model type {model_type!r}"
    return None


def _head_type(architecture: str) -> str | None:
    for prefix, model_type in (("XLMRoberta", "xlm-roberta"), ("Roberta", "roberta"), ("DistilBert", "distilbert"),
                               ("Bert", "bert"), ("Electra", "electra"), ("MPNet", "mpnet")):
        if architecture.startswith(prefix + "For"):
            return model_type
    return None


# ----------------------------------------------------------------------------- weights
def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The safetensors JSON header and the offset of the data; checks that every tensor lies in the file."""
    fix = "re-download or re-save the model (save_pretrained(..., safe_serialization=True))"
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ModelFormatError(f"{path} is not a safetensors file (only {size} bytes); {fix}.")
            length = int.from_bytes(raw, "little")
            if length <= 0 or 8 + length > size:
                raise ModelFormatError(f"{path} is truncated or not a safetensors file (header of {length} bytes, "
                                       f"file of {size}); {fix}.")
            header = json.loads(fh.read(length))
    except OSError as exc:
        raise ModelFormatError(f"Cannot read {path}: {exc}; {fix}.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path} has an unreadable safetensors header ({exc}); {fix}.") from exc
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path} has an unreadable safetensors header; {fix}.")
    start = 8 + length
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{path}: tensor {name!r} has a broken header entry; {fix}.") from exc
        if dtype not in _SAFETENSORS_DTYPES:
            raise ModelFormatError(f"{path}: tensor {name!r} has dtype {dtype}, which the builder cannot read; "
                                   "use ST_PLUGINS_GRAPH_BUILDER=export (needs torch).")
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize or start + end > size:
            raise ModelFormatError(f"{path} is truncated or corrupt: tensor {name!r} ({dtype} {shape}) does not fit in "
                                   f"the file ({size} bytes); {fix}.")
    return header, start


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    """Every floating tensor of ``path`` as float32 (fp16 and bf16 widened), integer tensors as they are.

    The file is memory-mapped: float32 tensors are read-only views of it (no copy of the weights in memory; the
    page cache holds them), other types are converted.
    """
    if not path.is_file():
        raise ModelFormatError(f"{path} is missing: the safetensors builder needs a single model.safetensors "
                               "(convert a pickle or sharded checkpoint with save_pretrained(safe_serialization=True), "
                               "or use ST_PLUGINS_GRAPH_BUILDER=export).")
    header, start = _read_header(path)  # checks that every tensor lies inside the file
    try:
        raw = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path} could not be read ({exc}); re-download or re-save the model.") from exc
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
        value = np.frombuffer(raw, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=start + begin)
        if info["dtype"] == "BF16":  # numpy has no bfloat16: widen the raw bits
            value = (value.astype(np.uint32) << 16).view(np.float32)
        elif value.dtype.kind == "f":
            value = value.astype(np.float32, copy=False)
        out[name] = value.reshape(info["shape"])
    return out


class _Weights:
    """Name lookup with the architecture prefix optional, shape checks and errors naming the file."""

    def __init__(self, tensors: dict[str, np.ndarray], prefix: str, path: Path) -> None:
        self.path = path
        self.tensors = {}
        for name, value in tensors.items():
            if name.startswith(prefix + "."):
                name = name[len(prefix) + 1 :]
            self.tensors.setdefault(name, value)

    def has(self, name: str) -> bool:
        return self._find(name) is not None

    def _find(self, name: str) -> str | None:
        candidates = [name]
        if name.endswith(".weight"):
            candidates.append(name[: -len("weight")] + "gamma")
        if name.endswith(".bias"):
            candidates.append(name[: -len("bias")] + "beta")
        return next((c for c in candidates if c in self.tensors), None)

    def get(self, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
        found = self._find(name)
        if found is None:
            raise ModelFormatError(f"{self.path} has no weight {name!r} (nor with its architecture prefix): the file "
                                   "does not match config.json; re-save the model with save_pretrained, or use "
                                   "ST_PLUGINS_GRAPH_BUILDER=export.")
        value = self.tensors[found]
        if value.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, value.shape)):
            want = tuple("?" if s is None else s for s in shape)
            raise ModelFormatError(f"{self.path}: weight {found!r} has shape {tuple(value.shape)}, config.json implies "
                                   f"{want}; the weights do not match config.json (re-save the model).")
        value = np.ascontiguousarray(value, dtype=np.float32)
        if not np.isfinite(value).all():
            raise ModelFormatError(f"{self.path}: weight {found!r} holds NaN or infinite values; the checkpoint is "
                                   "broken (re-download or re-save the model).")
        return value


# ----------------------------------------------------------------------------- graph
class _Graph:
    """Nodes and initializers with unique descriptive names."""

    def __init__(self) -> None:
        from st_plugins.core.backends import _proto

        self.proto = _proto
        self.model = _proto.messages().ModelProto()
        # (name, array, transposed): written one at a time by _proto.write_model, so the weights exist once in memory
        self.initializers: list[tuple[str, np.ndarray, bool]] = []
        self.nodes: list[Any] = []
        self.names: set[str] = set()
        self.fused: set[str] = set()

    def _unique(self, name: str) -> str:
        base, n = name, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def const(self, name: str, value: Any, dtype: Any = np.float32, transposed: bool = False) -> str:
        """An initializer holding ``value`` (``value.T`` when ``transposed``)."""
        name = self._unique(name)
        self.initializers.append((name, np.asarray(value, dtype=dtype), transposed))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, domain: str | None = None, outputs: int = 1,
           **attrs: Any) -> Any:
        name = self._unique(name)
        outs = [name if outputs == 1 else f"{name}:{i}" for i in range(outputs)]
        self.nodes.append(self.proto.node(op_type, inputs, outs, name=name, domain=domain, **attrs))
        if domain == "com.microsoft":
            self.fused.add(op_type)
        return outs[0] if outputs == 1 else outs

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        """``x @ weight.T + bias`` as MatMul (initializer ``[in, out]``) + Add."""
        w = self.const(f"{name}.weight_T", weight, transposed=True)
        b = self.const(f"{name}.bias", bias)
        return self.op("Add", [self.op("MatMul", [x, w], f"{name}/MatMul"), b], f"{name}/Add")

    def layer_norm(self, x: str, weight: np.ndarray, bias: np.ndarray, eps: float, name: str) -> str:
        gamma, beta = self.const(f"{name}.weight", weight), self.const(f"{name}.bias", bias)
        return self.op("LayerNormalization", [x, gamma, beta], f"{name}/LayerNormalization", axis=-1,
                       epsilon=float(eps))

    def activation(self, x: str, act: str, name: str) -> str:
        if act == "gelu":  # exact: x * 0.5 * (1 + erf(x / sqrt(2))), the pattern ORT fuses into (Bias)Gelu
            erf = self.op("Erf", [self.op("Div", [x, self.const(f"{name}/sqrt2", math.sqrt(2.0))], f"{name}/Div")],
                          f"{name}/Erf")
            one = self.op("Add", [erf, self.const(f"{name}/one", 1.0)], f"{name}/Add")
            return self.op("Mul", [self.op("Mul", [x, one], f"{name}/Mul"), self.const(f"{name}/half", 0.5)],
                           f"{name}/Mul_half")
        if act in ("gelu_new", "gelu_pytorch_tanh"):  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            cube = self.op("Pow", [x, self.const(f"{name}/three", 3.0)], f"{name}/Pow")
            inner = self.op("Add", [x, self.op("Mul", [cube, self.const(f"{name}/c", 0.044715)], f"{name}/Mul_c")],
                            f"{name}/Add_inner")
            scaled = self.op("Mul", [inner, self.const(f"{name}/k", math.sqrt(2.0 / math.pi))], f"{name}/Mul_k")
            one = self.op("Add", [self.op("Tanh", [scaled], f"{name}/Tanh"), self.const(f"{name}/one", 1.0)],
                          f"{name}/Add_one")
            return self.op("Mul", [self.op("Mul", [x, self.const(f"{name}/half", 0.5)], f"{name}/Mul_half"), one],
                           f"{name}/Mul")
        if act == "relu":
            return self.op("Relu", [x], f"{name}/Relu")
        if act in ("silu", "swish"):
            return self.op("Mul", [x, self.op("Sigmoid", [x], f"{name}/Sigmoid")], f"{name}/Mul")
        raise BackendError(f"activation {act!r} is not built")  # unsupported_reason refuses it first


def _names(model_type: str, i: int) -> dict[str, str]:
    """Weight names (without the architecture prefix) of layer ``i``."""
    if model_type == "distilbert":
        p = f"transformer.layer.{i}."
        return {"q": p + "attention.q_lin", "k": p + "attention.k_lin", "v": p + "attention.v_lin",
                "o": p + "attention.out_lin", "ln1": p + "sa_layer_norm", "up": p + "ffn.lin1", "down": p + "ffn.lin2",
                "ln2": p + "output_layer_norm"}
    p = f"encoder.layer.{i}."
    if model_type == "mpnet":
        return {"q": p + "attention.attn.q", "k": p + "attention.attn.k", "v": p + "attention.attn.v",
                "o": p + "attention.attn.o", "ln1": p + "attention.LayerNorm", "up": p + "intermediate.dense",
                "down": p + "output.dense", "ln2": p + "output.LayerNorm"}
    return {"q": p + "attention.self.query", "k": p + "attention.self.key", "v": p + "attention.self.value",
            "o": p + "attention.output.dense", "ln1": p + "attention.output.LayerNorm", "up": p + "intermediate.dense",
            "down": p + "output.dense", "ln2": p + "output.LayerNorm"}


def _sinusoidal(n_pos: int, dim: int) -> np.ndarray:
    """DistilBERT's sinusoidal position table (as ``create_sinusoidal_embeddings`` writes it)."""
    enc = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)])
    out = np.zeros((n_pos, dim), dtype=np.float32)
    out[:, 0::2] = np.sin(enc[:, 0::2])
    out[:, 1::2] = np.cos(enc[:, 1::2])
    return out


def mpnet_buckets(relative: np.ndarray, num_buckets: int = _MPNET_BUCKETS,
                  max_distance: int = _MPNET_MAX_DISTANCE) -> np.ndarray:
    """``MPNetEncoder.relative_position_bucket`` in numpy (float32 like torch), for ``relative = key - query``."""
    n = -np.asarray(relative, dtype=np.int64)
    half = num_buckets // 2
    ret = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    max_exact = half // 2
    with np.errstate(divide="ignore"):
        ratio = np.log(n.astype(np.float32) / np.float32(max_exact)) / np.float32(math.log(max_distance / max_exact))
    scaled = np.where(n < max_exact, np.float32(0), ratio * np.float32(half - max_exact))  # small n: not used
    large = np.minimum(max_exact + np.trunc(scaled).astype(np.int64), half - 1)  # .to(torch.long) truncates
    return ret + np.where(n < max_exact, n, large)


def _embeddings(g: _Graph, w: _Weights, d: _Dims, feeds: tuple[str, ...], ids: str) -> str:
    e, mt = d.embedding, d.model_type
    word = g.op("Gather", [g.const("embeddings.word_embeddings.weight", w.get("embeddings.word_embeddings.weight",
                                                                              (d.vocab, e))), ids],
                "embeddings/word_embeddings/Gather", axis=0)
    if mt == "distilbert" and not w.has("embeddings.position_embeddings.weight") and d.get("sinusoidal_pos_embds"):
        table = _sinusoidal(d.positions, e)
    else:
        table = w.get("embeddings.position_embeddings.weight", (d.positions, e))
    token_types = None
    if d.type_vocab:
        token_types = w.get("embeddings.token_type_embeddings.weight", (d.type_vocab, e))
    x = word
    if token_types is not None and "token_type_ids" in feeds:
        tt = g.op("Gather", [g.const("embeddings.token_type_embeddings.weight", token_types), "token_type_ids"],
                  "embeddings/token_type_embeddings/Gather", axis=0)
        x = g.op("Add", [x, tt], "embeddings/add_token_types")
    elif token_types is not None:  # token_type_ids absent: zeros
        x = g.op("Add", [x, g.const("embeddings.token_type_embeddings.row0", token_types[0])],
                 "embeddings/add_token_type_0")
    if mt in ("roberta", "xlm-roberta", "mpnet"):  # positions count non-pad tokens, after padding_idx
        pad = 1 if mt == "mpnet" else int(d.pad)
        keep = g.op("Cast", [g.op("Not", [g.op("Equal", [ids, g.const("embeddings/pad_id", pad, np.int64)],
                                              "embeddings/position_ids/Equal")], "embeddings/position_ids/Not")],
                    "embeddings/position_ids/Cast", to=7)
        count = g.op("CumSum", [keep, g.const("embeddings/position_ids/axis", 1, np.int64)],
                     "embeddings/position_ids/CumSum")
        pos_ids = g.op("Add", [g.op("Mul", [count, keep], "embeddings/position_ids/Mul"),
                               g.const("embeddings/position_ids/offset", pad, np.int64)], "embeddings/position_ids/Add")
        pos = g.op("Gather", [g.const("embeddings.position_embeddings.weight", table), pos_ids],
                   "embeddings/position_embeddings/Gather", axis=0)
    else:  # positions 0..seq-1: the first rows of the table
        seq = g.op("Gather", [g.op("Shape", [ids], "embeddings/Shape"), g.const("embeddings/dim1", [1], np.int64)],
                   "embeddings/sequence_length", axis=0)
        pos = g.op("Slice", [g.const("embeddings.position_embeddings.weight", table),
                             g.const("embeddings/zero", [0], np.int64), seq,
                             g.const("embeddings/axis0", [0], np.int64)], "embeddings/position_embeddings/Slice")
    x = g.op("Add", [x, pos], "embeddings/add_positions")
    x = g.layer_norm(x, w.get("embeddings.LayerNorm.weight", (e,)), w.get("embeddings.LayerNorm.bias", (e,)),
                     d.eps, "embeddings.LayerNorm")
    if mt == "electra" and (w.has("embeddings_project.weight") or e != d.hidden):
        x = g.linear(x, w.get("embeddings_project.weight", (d.hidden, e)),
                     w.get("embeddings_project.bias", (d.hidden,)), "embeddings_project")
    return x


def _attention_bias(g: _Graph, w: _Weights, d: _Dims, feeds: tuple[str, ...], ids: str) -> str | None:
    """The additive attention bias shared by every layer: ``[batch, 1, 1, seq]`` padding mask, plus MPNet's
    ``[1, heads, seq, seq]`` relative position bias."""
    bias = None
    if "attention_mask" in feeds:
        mask = g.op("Cast", ["attention_mask"], "attention_mask/Cast", to=1)
        inverted = g.op("Sub", [g.const("attention_mask/one", 1.0), mask], "attention_mask/invert")
        lowest = g.const("attention_mask/min", np.finfo(np.float32).min)
        scaled = g.op("Mul", [inverted, lowest], "attention_mask/scale")
        bias = g.op("Unsqueeze", [scaled, g.const("attention_mask/axes", [1, 2], np.int64)], "attention_mask/Unsqueeze")
    if d.model_type == "mpnet":
        table = w.get("encoder.relative_attention_bias.weight", (None, d.heads))
        span = d.positions  # relative positions -(span-1) .. span-1
        buckets = mpnet_buckets(np.arange(-(span - 1), span))
        by_offset = np.ascontiguousarray(table[buckets].T)  # [heads, 2 span - 1]
        seq = g.op("Gather", [g.op("Shape", [ids], "position_bias/Shape"), g.const("position_bias/dim1", 1, np.int64)],
                   "position_bias/sequence_length", axis=0)
        steps = g.op("Range", [g.const("position_bias/start", 0, np.int64), seq,
                               g.const("position_bias/step", 1, np.int64)], "position_bias/Range")
        keys = g.op("Unsqueeze", [steps, g.const("position_bias/axes0", [0], np.int64)], "position_bias/keys")
        queries = g.op("Unsqueeze", [steps, g.const("position_bias/axes1", [1], np.int64)], "position_bias/queries")
        offset = g.op("Add", [g.op("Sub", [keys, queries], "position_bias/relative"),
                              g.const("position_bias/shift", span - 1, np.int64)], "position_bias/index")
        values = g.op("Gather", [g.const("encoder.relative_attention_bias.by_offset", by_offset), offset],
                      "position_bias/Gather", axis=1)  # [heads, seq, seq]
        position = g.op("Unsqueeze", [values, g.const("position_bias/axes_batch", [0], np.int64)],
                        "position_bias/Unsqueeze")
        bias = position if bias is None else g.op("Add", [position, bias], "attention_bias/Add")
    return bias


def _layer(g: _Graph, w: _Weights, d: _Dims, x: str, bias: str | None, i: int, first_only: bool = False) -> str:
    """One encoder layer. ``first_only``: only token 0's output (``[batch, 1, hidden]``; keys and values still come
    from every token), for the last layer under a classification head, which reads token 0 alone."""
    n, h, heads, hd = _names(d.model_type, i), d.hidden, d.heads, d.head_dim
    name = f"layer.{i}"
    scale = np.float32(1.0 / math.sqrt(hd))
    rows = x
    if first_only:
        first = [g.const(f"{name}/first/{k}", [v], np.int64) for k, v in (("start", 0), ("end", 1))]
        axis = g.const(f"{name}/first/axis", [1], np.int64)
        rows = g.op("Slice", [x, *first, axis], f"{name}/first_token")
        if bias is not None and d.model_type == "mpnet":  # the position bias of query row 0
            bias = g.op("Slice", [bias, *first, g.const(f"{name}/first/query_axis", [2], np.int64)],
                        f"{name}/first_token_bias")
    # the scale multiplies the scores, as transformers does: folded into the query weights it changed their range,
    # and so the int8 smoothing of the Q/K/V group (STS min cosine 0.9889 instead of 0.9933)
    q = g.linear(rows, w.get(n["q"] + ".weight", (h, h)), w.get(n["q"] + ".bias", (h,)), f"{name}.attention.query")
    k = g.linear(x, w.get(n["k"] + ".weight", (h, h)), w.get(n["k"] + ".bias", (h,)), f"{name}.attention.key")
    v = g.linear(x, w.get(n["v"] + ".weight", (h, h)), w.get(n["v"] + ".bias", (h,)), f"{name}.attention.value")
    split = g.const(f"{name}.attention/heads_shape", [0, 0, heads, hd], np.int64)

    def heads_of(t: str, label: str, perm: list[int]) -> str:
        return g.op("Transpose", [g.op("Reshape", [t, split], f"{name}.attention/{label}/Reshape")],
                    f"{name}.attention/{label}/Transpose", perm=perm)

    scores = g.op("MatMul", [heads_of(q, "query", [0, 2, 1, 3]), heads_of(k, "key", [0, 2, 3, 1])],
                  f"{name}.attention/scores/MatMul")
    scores = g.op("Mul", [scores, g.const(f"{name}.attention/scale", scale)], f"{name}.attention/scores/scale")
    if bias is not None:
        scores = g.op("Add", [scores, bias], f"{name}.attention/scores/add_bias")
    probs = g.op("Softmax", [scores], f"{name}.attention/Softmax", axis=-1)
    context = g.op("MatMul", [probs, heads_of(v, "value", [0, 2, 1, 3])], f"{name}.attention/context/MatMul")
    context = g.op("Reshape", [g.op("Transpose", [context], f"{name}.attention/context/Transpose", perm=[0, 2, 1, 3]),
                               g.const(f"{name}.attention/merge_shape", [0, 0, h], np.int64)],
                   f"{name}.attention/context/Reshape")
    out = g.linear(context, w.get(n["o"] + ".weight", (h, h)), w.get(n["o"] + ".bias", (h,)),
                   f"{name}.attention.output")
    x = g.layer_norm(g.op("Add", [out, rows], f"{name}.attention/residual"), w.get(n["ln1"] + ".weight", (h,)),
                     w.get(n["ln1"] + ".bias", (h,)), d.eps, f"{name}.attention.LayerNorm")
    up = g.linear(x, w.get(n["up"] + ".weight", (d.intermediate, h)), w.get(n["up"] + ".bias", (d.intermediate,)),
                  f"{name}.intermediate")
    up = g.activation(up, d.act, f"{name}.intermediate.act")
    down = g.linear(up, w.get(n["down"] + ".weight", (h, d.intermediate)), w.get(n["down"] + ".bias", (h,)),
                    f"{name}.output")
    return g.layer_norm(g.op("Add", [down, x], f"{name}.output/residual"), w.get(n["ln2"] + ".weight", (h,)),
                        w.get(n["ln2"] + ".bias", (h,)), d.eps, f"{name}.output.LayerNorm")


def _classifier(g: _Graph, w: _Weights, d: _Dims, x: str, head: str) -> tuple[str, int]:
    """The sequence-classification head on token 0: (logits tensor, num_labels)."""
    h = d.hidden
    first = g.op("Gather", [x, g.const("head/token0", 0, np.int64)], "head/first_token", axis=1)  # [batch, hidden]
    if head == "pooler":
        pooled = g.op("Tanh", [g.linear(first, w.get("pooler.dense.weight", (h, h)), w.get("pooler.dense.bias", (h,)),
                                        "pooler.dense")], "pooler/Tanh")
        out = "classifier"
    elif head == "pre_classifier":
        pre = g.linear(first, w.get("pre_classifier.weight", (h, h)), w.get("pre_classifier.bias", (h,)),
                       "pre_classifier")
        pooled = g.op("Relu", [pre], "pre_classifier/Relu")
        out = "classifier"
    else:
        dense = g.linear(first, w.get("classifier.dense.weight", (h, h)), w.get("classifier.dense.bias", (h,)),
                         "classifier.dense")
        pooled = g.op("Tanh", [dense], "classifier.dense/Tanh") if head == "dense_tanh" else \
            g.activation(dense, "gelu", "classifier.dense.act")
        out = "classifier.out_proj"
    weight = w.get(f"{out}.weight", (None, h))
    labels = int(weight.shape[0])
    logits = g.linear(pooled, weight, w.get(f"{out}.bias", (labels,)), out)
    return logits, labels


def build_graph(model_dir: Path, kind: str, path: Path, inputs: tuple[str, ...]) -> dict:
    """Write the fp32 graph of the encoder in ``model_dir`` to ``path`` (one ``.onnx`` file, weights inside, opset 17).

    Args:
        model_dir: A transformers folder with ``config.json`` and ``model.safetensors`` (names with or without
            the architecture prefix; fp32, fp16 or bf16).
        kind: ``"bi"`` (output ``token_embeddings`` ``[batch, sequence, hidden]``) or ``"cross"`` (output
            ``logits`` ``[batch, num_labels]``).
        path: The ``.onnx`` file to write.
        inputs: The graph's feeds in order, from ``("input_ids", "attention_mask", "token_type_ids")``, all int64
            ``[batch, sequence]``. Without ``token_type_ids`` the token types are zeros; models without token types
            ignore it.

    Returns:
        ``{"builder": "safetensors", "model_type": ..., "opset": 17, "fused": [...com.microsoft ops used...]}``.

    Raises:
        ModelFormatError: ``config.json`` or ``model.safetensors`` is missing or broken, or a weight is missing or
            has a shape that does not match ``config.json`` (the message names the file).
        BackendError: ``kind`` / ``inputs`` are not valid, or the config is not covered (see
            :func:`unsupported_reason`).
    """
    from st_plugins.core.backends import _proto as helper

    TensorProto = helper.messages().TensorProto

    model_dir, path = Path(model_dir), Path(path)
    inputs = tuple(inputs)
    if "input_ids" not in inputs or any(n not in FEEDS for n in inputs) or len(set(inputs)) != len(inputs):
        raise BackendError(f"inputs must be distinct names from {FEEDS} including 'input_ids'; got {inputs}.")
    config_path = model_dir / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelFormatError(f"{config_path} cannot be read ({exc}); the model folder needs its "
                               "config.json.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{config_path} is not valid JSON ({exc}); re-save the model.") from exc
    reason = unsupported_reason(config, kind)
    if reason is not None:
        raise BackendError(f"The safetensors builder cannot build {model_dir} ({kind}): {reason}; "
                           "use ST_PLUGINS_GRAPH_BUILDER=export (needs torch).")
    dims = _Dims(config)
    weights_path = model_dir / "model.safetensors"
    w = _Weights(_load_weights(weights_path), _PREFIX[dims.model_type], weights_path)
    if dims.vocab is None:
        dims.vocab = int(w.get("embeddings.word_embeddings.weight", (None, dims.embedding)).shape[0])

    g = _Graph()
    x = _embeddings(g, w, dims, inputs, "input_ids")
    bias = _attention_bias(g, w, dims, inputs, "input_ids")
    for i in range(dims.layers):  # a classification head reads token 0 only: the last layer computes just that row
        x = _layer(g, w, dims, x, bias, i, first_only=kind == "cross" and i == dims.layers - 1)
    if w.has(f"{_names(dims.model_type, dims.layers)['q']}.weight"):
        raise ModelFormatError(f"{weights_path} has more layers than config.json's {dims.layers}; the weights do not "
                               "match config.json (re-save the model).")
    if kind == "bi":
        output, out_shape = "token_embeddings", ["batch", "sequence", dims.hidden]
        g.nodes.append(helper.node("Identity", [x], [output], name="output/token_embeddings"))
    else:
        head, _ = _head(config, dims.model_type)
        logits, labels = _classifier(g, w, dims, x, head)
        output, out_shape = "logits", ["batch", labels]
        g.nodes.append(helper.node("Identity", [logits], [output], name="output/logits"))
    model = g.model
    model.graph.name = f"{dims.model_type}_{kind}"
    model.graph.node.extend(g.nodes)
    model.graph.input.extend(helper.value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in inputs)
    model.graph.output.append(helper.value_info(output, TensorProto.FLOAT, out_shape))
    model.opset_import.extend([helper.opset("", OPSET)] +
                              ([helper.opset("com.microsoft", 1)] if g.fused else []))
    model.ir_version = 8  # opset 17 runs on any ONNX Runtime that has it
    model.producer_name = "st_plugins.builder"
    path.parent.mkdir(parents=True, exist_ok=True)
    helper.write_model(path, model, g.initializers)  # < 2 GiB: checked against the parameter count above
    fused = sorted(g.fused)
    return {"builder": "safetensors", "model_type": dims.model_type, "opset": OPSET, "fused": fused}
