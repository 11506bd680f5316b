"""ONNX protobuf messages without importing the ``onnx`` package (its ``__init__`` imports ml_dtypes: ~1 s).

The graph builder needs only the generated message classes (``onnx/onnx_ml_pb2.py``, plain protobuf) and
four constructors; :func:`messages` loads that one file from the installed ``onnx`` distribution. When
``onnx`` is already imported, its own module is used.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import numpy as np

from st_plugins.errors import MissingDependencyError

__all__ = ["messages", "tensor", "node", "value_info", "opset", "write_model"]

_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.int32): 6,
           np.dtype(np.int64): 7, np.dtype(np.bool_): 9, np.dtype(np.float16): 10, np.dtype(np.float64): 11}
_PB: list[Any] = []


def messages() -> Any:
    """The ``onnx_ml_pb2`` module (``ModelProto``, ``TensorProto``, ...)."""
    if _PB:
        return _PB[0]
    if "onnx" in sys.modules:
        import onnx.onnx_ml_pb2 as pb
    else:
        spec = importlib.util.find_spec("onnx")
        if spec is None or not spec.submodule_search_locations:
            raise MissingDependencyError('`onnx` is needed to build graphs but is not installed. Install it with: '
                                         'pip install "st-plugins"')
        path = f"{list(spec.submodule_search_locations)[0]}/onnx_ml_pb2.py"
        loaded = importlib.util.spec_from_file_location("st_plugins._onnx_ml_pb2", path)
        pb = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(pb)
    _PB.append(pb)
    return pb


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, length: int) -> bytes:
    """The tag and length of a length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(length)


_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9  # field numbers in onnx.proto


def write_model(path: Any, model: Any, initializers: list[tuple[str, np.ndarray, bool]]) -> int:
    """Write ``model`` (a ``ModelProto`` whose graph has no initializers yet) to ``path`` with ``initializers``
    appended to its graph, one tensor at a time: a protobuf parser reads the file as ``SerializeToString`` of
    the complete model, but no serialized copy of the weights is ever held in memory.

    Args:
        path: A file path or a binary file object.
        initializers: ``(name, array, transposed)``; with ``transposed`` the 2-D array is stored as ``array.T``
            (that copy exists one tensor at a time, while it is written).

    Returns:
        The number of bytes written.

    Example:
        >>> import io
        >>> pb = messages(); model = pb.ModelProto(ir_version=8); model.graph.name = "g"
        >>> buf = io.BytesIO()
        >>> n = write_model(buf, model, [("w", np.arange(6, dtype=np.float32).reshape(2, 3), True)])
        >>> back = pb.ModelProto.FromString(buf.getvalue()).graph.initializer[0]
        >>> n == len(buf.getvalue()), back.name, list(back.dims), np.frombuffer(back.raw_data, "<f4").tolist()
        (True, 'w', [3, 2], [0.0, 3.0, 1.0, 4.0, 2.0, 5.0])
    """
    pb = messages()
    graph = model.graph.SerializeToString()
    rest = pb.ModelProto()
    rest.CopyFrom(model)
    rest.ClearField("graph")
    plans = []
    for name, array, transposed in initializers:
        shape = array.shape[::-1] if transposed else array.shape
        header = pb.TensorProto(name=name, dims=list(shape), data_type=_DTYPES[array.dtype]).SerializeToString()
        body = header + _field(_TENSOR_RAW_DATA, array.nbytes)
        plans.append((_field(_GRAPH_INITIALIZER, len(body) + array.nbytes) + body, array, transposed))
    chunks = [rest.SerializeToString(), _field(_MODEL_GRAPH, len(graph) + sum(len(h) + a.nbytes for h, a, _ in plans)),
              graph]

    def write(fh: Any) -> int:
        total = 0
        for chunk in chunks:
            total += fh.write(chunk)
        for head, array, transposed in plans:
            data = np.ascontiguousarray(array.T if transposed else array, dtype=array.dtype.newbyteorder("<"))
            total += fh.write(head) + (fh.write(memoryview(data.reshape(-1)).cast("B")) if data.size else 0)
        return total

    if hasattr(path, "write"):
        return write(path)
    with open(path, "wb") as fh:
        return write(fh)


def tensor(array: np.ndarray, name: str) -> Any:
    """A ``TensorProto`` holding ``array`` (raw little-endian bytes), as ``onnx.numpy_helper.from_array``."""
    array = np.asarray(array, order="C")  # (ascontiguousarray would make a scalar 1-D)
    out = messages().TensorProto(name=name, dims=list(array.shape), data_type=_DTYPES[array.dtype])
    out.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return out


def node(op_type: str, inputs: list[str], outputs: list[str], name: str, domain: str | None = None,
         **attrs: Any) -> Any:
    """A ``NodeProto`` with int, float, str and int-list attributes, as ``onnx.helper.make_node``."""
    pb = messages()
    out = pb.NodeProto(op_type=op_type, input=inputs, output=outputs, name=name, domain=domain or "")
    for key, value in sorted(attrs.items()):
        attr = out.attribute.add(name=key)
        if isinstance(value, bool) or isinstance(value, (int, np.integer)):
            attr.type, attr.i = pb.AttributeProto.INT, int(value)
        elif isinstance(value, (float, np.floating)):
            attr.type, attr.f = pb.AttributeProto.FLOAT, float(value)
        elif isinstance(value, str):
            attr.type, attr.s = pb.AttributeProto.STRING, value.encode()
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value):
            attr.type = pb.AttributeProto.INTS
            attr.ints.extend(int(v) for v in value)
        else:
            raise TypeError(f"attribute {key!r} of {name}: unsupported value {value!r}")
    return out


def value_info(name: str, elem_type: int, shape: list[Any]) -> Any:
    """A tensor ``ValueInfoProto`` (dims: ints or symbolic names), as ``onnx.helper.make_tensor_value_info``."""
    out = messages().ValueInfoProto(name=name)
    out.type.tensor_type.elem_type = elem_type
    for dim in shape:
        d = out.type.tensor_type.shape.dim.add()
        if isinstance(dim, str):
            d.dim_param = dim
        else:
            d.dim_value = int(dim)
    return out


def opset(domain: str, version: int) -> Any:
    return messages().OperatorSetIdProto(domain=domain, version=version)
