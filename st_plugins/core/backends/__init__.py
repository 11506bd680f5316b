"""Inference backends, chosen with ``backend=``, and the torch-side graph builders.

=========  ============================================================================  =====================
backend    what runs                                                                     guarantee (vs torch fp32)
=========  ============================================================================  =====================
``auto``   the runtime's fp32 graph when the model is on the CPU with the folder's       as ``onnx`` / exact
           weights in float32; else torch (default)
``torch``  the model's own torch forward                                                 the reference
``onnx``   the runtime's fp32 graph; each batch cut into one slice per thread            max diff <= 1e-5
``bf16``   torch under ``autocast(bfloat16)`` (matmuls bf16, norms/softmax fp32)        min cosine >= 0.9999
``int8``   the runtime's int8 graph: smoothed inputs, outlier channels kept fp32         min cosine >= 0.99
           (:mod:`.quantize`); bi-encoders only
=========  ============================================================================  =====================

Graphs are run by :mod:`st_plugins.core.runtime` (no torch) and built here (:mod:`.build`,
:mod:`.export`, :mod:`.quantize`: torch + onnx), once per machine and model, cached by the model's
content hash and the library versions. Importing this package is light.
"""

from __future__ import annotations

from st_plugins.errors import InputValueError

__all__ = ["BACKENDS", "ALIASES", "check_backend"]

BACKENDS = ("auto", "torch", "onnx", "bf16", "int8")
ALIASES = {"bfloat16": "bf16", "onnx-bf16": "bf16", "fp32": "onnx", "onnx-fp32": "onnx", "onnx-int8": "int8",
           "qint8": "int8", "pytorch": "torch"}


def check_backend(value: object, allowed: tuple[str, ...] = BACKENDS) -> str:
    """Return the canonical backend name, or raise naming what is allowed.

    Example:
        >>> check_backend("bfloat16")
        'bf16'
        >>> check_backend("fast")
        Traceback (most recent call last):
        ...
        st_plugins.errors.InputValueError: `backend` must be one of ('auto', 'torch', 'onnx', 'bf16', 'int8'); got 'fast'.
    """
    name = ALIASES.get(value, value) if isinstance(value, str) else value
    if name not in allowed:
        raise InputValueError(f"`backend` must be one of {allowed}; got {value!r}.")
    return name
