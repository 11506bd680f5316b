"""Input checks shared by every model kind: errors name the offending index, value and the fix."""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Sequence
from typing import Any

from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["as_text_list", "as_pair_list", "check_text", "check_positive_int", "check_real", "check_choice",
           "check_device"]


def _is_array(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] in {"numpy", "pandas"} and hasattr(obj, "tolist")


def _refuse_container(inputs: Any, name: str, what: str) -> None:
    """Containers that ``list()`` would silently misread: a DataFrame (its column names), a set (no order)."""
    if type(inputs).__module__.split(".")[0] == "pandas" and hasattr(inputs, "columns"):
        raise InputTypeError(f"`{name}` must be {what}; got a DataFrame (iterating it gives its column names). "
                             "Pass a column, e.g. df['text'], or its rows as a list.")
    if isinstance(inputs, (set, frozenset)):
        raise InputTypeError(f"`{name}` must be {what}; got a {type(inputs).__name__}, which has no order, so results "
                             "could not be matched to inputs. Pass a list, e.g. sorted(texts).")


def check_text(text: str, name: str) -> str:
    """``text`` (a str) unless it holds a lone surrogate (e.g. ``"\\ud800"``), which no tokenizer can encode.

    Example:
        >>> check_text("\\ud800", "query")
        Traceback (most recent call last):
        ...
        st_plugins.errors.InputValueError: `query` must be valid Unicode; got a lone surrogate '\\ud800' at position 0, which ...
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputValueError(
                f"`{name}` must be valid Unicode; got a lone surrogate {text[exc.start]!r} at position {exc.start}, "
                "which no tokenizer can encode. Fix the text, e.g. text.encode('utf-8', 'replace').decode('utf-8'), "
                "or drop it."
            ) from None
    return text


def as_text_list(inputs: Any, name: str = "sentences") -> tuple[list[str], bool]:
    """Return ``(texts, was_single)``; raise :class:`InputTypeError` naming the first bad item.

    Example:
        >>> as_text_list("hi")
        (['hi'], True)
        >>> as_text_list(["a", 3])
        Traceback (most recent call last):
        ...
        st_plugins.errors.InputTypeError: `sentences[1]` must be a str; got int (3). Convert or drop it.
    """
    if isinstance(inputs, str):
        return [inputs], True
    if inputs is None or isinstance(inputs, (bytes, bytearray, dict)):
        raise InputTypeError(
            f"`{name}` must be a str or a list of str; got {type(inputs).__name__}."
            + (" Decode bytes first, e.g. text.decode('utf-8')." if isinstance(inputs, (bytes, bytearray)) else "")
        )
    _refuse_container(inputs, name, "a str or a list of str")
    if _is_array(inputs):
        inputs = inputs.tolist()
    if not isinstance(inputs, Sequence) and not hasattr(inputs, "__iter__"):
        raise InputTypeError(f"`{name}` must be a str or a list of str; got {type(inputs).__name__}.")
    texts = list(inputs)
    for i, item in enumerate(texts):
        if not isinstance(item, str):
            shown = repr(item) if len(repr(item)) < 40 else repr(item)[:37] + "..."
            hint = " Decode bytes first." if isinstance(item, (bytes, bytearray)) else " Convert or drop it."
            if type(item).__module__.startswith("PIL.") or isinstance(item, os.PathLike) or _is_array(item):
                hint = (" It looks like an image: this model takes texts only (it has no image tower); encode images "
                        "with an image-text model (CLIP-style).")
            raise InputTypeError(f"`{name}[{i}]` must be a str; got {type(item).__name__} ({shown}).{hint}")
        check_text(item, f"{name}[{i}]")
    return texts, False


def as_pair_list(inputs: Any, name: str = "sentences") -> tuple[list[tuple[str, str]], bool]:
    """Return ``(pairs, was_single)`` for cross-encoder input; each pair is two str.

    Example:
        >>> as_pair_list(("q", "d"))
        ([('q', 'd')], True)
    """
    if inputs is None or isinstance(inputs, (str, bytes, dict)) or not hasattr(inputs, "__iter__"):
        raise InputTypeError(f"`{name}` must be a list of (str, str) pairs; got {type(inputs).__name__}.")
    _refuse_container(inputs, name, "a list of (str, str) pairs")
    if _is_array(inputs):
        inputs = inputs.tolist()
    items = list(inputs)
    single = len(items) == 2 and all(isinstance(x, str) for x in items)
    if single:
        items = [items]
    pairs = []
    for i, pair in enumerate(items):
        if _is_array(pair):
            pair = pair.tolist()
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InputTypeError(
                f"`{name}[{i}]` must be a pair (query, document) of two str; got {type(pair).__name__} ({pair!r:.40})."
            )
        for j, text in enumerate(pair):
            if not isinstance(text, str):
                raise InputTypeError(f"`{name}[{i}][{j}]` must be a str; got {type(text).__name__} ({text!r:.40}).")
            check_text(text, f"{name}[{i}][{j}]")
        pairs.append((pair[0], pair[1]))
    return pairs, single


def check_positive_int(value: Any, name: str) -> int:
    """Example:
    >>> check_positive_int(0, "batch_size")
    Traceback (most recent call last):
    ...
    st_plugins.errors.InputValueError: `batch_size` must be a positive int; got 0.
    >>> check_positive_int(__import__("numpy").int64(8), "batch_size")  # numpy ints are ints
    8
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise InputValueError(f"`{name}` must be a positive int; got {value!r}.")
    return int(value)


def check_real(value: Any, name: str) -> float:
    """``value`` as a float: a finite real number (not a bool, not NaN or inf).

    Example:
        >>> check_real(float("nan"), "threshold")
        Traceback (most recent call last):
        ...
        st_plugins.errors.InputValueError: `threshold` must be a finite number; got nan.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputValueError(f"`{name}` must be a finite number; got {value!r}.")
    return float(value)


def check_choice(value: Any, allowed: Sequence[Any], name: str) -> Any:
    """Raise :class:`InputValueError` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise InputValueError(f"`{name}` must be one of {list(allowed)}; got {value!r}.")
    return value


_CPU = re.compile(r"cpu(:\d+)?")


def check_device(device: Any, name: str = "device") -> str | None:
    """``device`` as a string (``None``/``""``: the default), or a typed error: not a device torch knows, or
    one this machine does not have. ``"cpu"`` is checked without importing torch.

    Example:
        >>> check_device("cpu"), check_device(None)
        ('cpu', None)
        >>> check_device(3)
        Traceback (most recent call last):
        ...
        st_plugins.errors.InputTypeError: `device` must be a str such as 'cpu' or 'cuda:0' (or a torch.device); got int (3).
    """
    if device is None or device == "":
        return None
    if type(device).__module__ == "torch" and type(device).__name__ == "device":
        device = str(device)
    if not isinstance(device, str):
        raise InputTypeError(f"`{name}` must be a str such as 'cpu' or 'cuda:0' (or a torch.device); "
                             f"got {type(device).__name__} ({device!r:.40}).")
    if _CPU.fullmatch(device):
        return device
    try:
        import torch
    except ImportError:
        raise InputValueError(f"`{name}` must be 'cpu' here: torch is not installed, and only torch runs on other "
                              f"devices; got {device!r}. Install torch, or use device='cpu'.") from None
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InputValueError(f"`{name}` must be a torch device such as 'cpu', 'cuda' or 'cuda:1'; got {device!r}.") from None
    module = getattr(torch, parsed.type, None)
    available = getattr(module, "is_available", None)
    if parsed.type != "cpu" and not (callable(available) and available()):
        raise InputValueError(f"`{name}` must be a device this machine has; got {device!r}, but torch "
                              f"{torch.__version__} finds no usable {parsed.type} device here. Use 'cpu', or leave "
                              f"`{name}` unset for the default.")
    count = getattr(module, "device_count", None)
    if parsed.index is not None and callable(count) and parsed.index >= count():
        raise InputValueError(f"`{name}` must be a device this machine has; got {device!r}, but it has {count()} "
                              f"{parsed.type} device(s), numbered from 0.")
    return device
