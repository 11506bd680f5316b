"""Input checks shared by every model kind: errors name the offending index, value and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from st_plugins.errors import InputTypeError, InputValueError

__all__ = ["as_text_list", "as_pair_list", "check_positive_int", "check_choice"]


def _is_array(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] in {"numpy", "pandas"} and hasattr(obj, "tolist")


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
    if _is_array(inputs):
        inputs = inputs.tolist()
    if not isinstance(inputs, Sequence) and not hasattr(inputs, "__iter__"):
        raise InputTypeError(f"`{name}` must be a str or a list of str; got {type(inputs).__name__}.")
    texts = list(inputs)
    for i, item in enumerate(texts):
        if not isinstance(item, str):
            shown = repr(item) if len(repr(item)) < 40 else repr(item)[:37] + "..."
            hint = " Decode bytes first." if isinstance(item, (bytes, bytearray)) else " Convert or drop it."
            raise InputTypeError(f"`{name}[{i}]` must be a str; got {type(item).__name__} ({shown}).{hint}")
    return texts, False


def as_pair_list(inputs: Any, name: str = "sentences") -> tuple[list[tuple[str, str]], bool]:
    """Return ``(pairs, was_single)`` for cross-encoder input; each pair is two str.

    Example:
        >>> as_pair_list(("q", "d"))
        ([('q', 'd')], True)
    """
    if inputs is None or isinstance(inputs, (str, bytes, dict)):
        raise InputTypeError(f"`{name}` must be a list of (str, str) pairs; got {type(inputs).__name__}.")
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
        pairs.append((pair[0], pair[1]))
    return pairs, single


def check_positive_int(value: Any, name: str) -> int:
    """Example:
    >>> check_positive_int(0, "batch_size")
    Traceback (most recent call last):
    ...
    st_plugins.errors.InputValueError: `batch_size` must be a positive int; got 0.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputValueError(f"`{name}` must be a positive int; got {value!r}.")
    return value


def check_choice(value: Any, allowed: Sequence[Any], name: str) -> Any:
    """Raise :class:`InputValueError` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise InputValueError(f"`{name}` must be one of {list(allowed)}; got {value!r}.")
    return value
