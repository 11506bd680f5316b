"""sentence-transformers' call conventions that are not ours: its renamed keywords and options we refuse.

sentence-transformers 6.2 renamed ``sentences`` to ``inputs`` and ``tokenizer_kwargs`` to
``processor_kwargs`` and still accepts the old names; so do we (with a ``DeprecationWarning``). Options
of its signatures that st_plugins does not implement (a multi-process ``pool``, ``modules`` built in
code, cross-encoder prompts) are accepted by name, so that the signatures match, and refused with a
typed error when given a value.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from st_plugins.errors import InputValueError

__all__ = ["renamed_kwargs", "refuse_unsupported", "legacy_positional"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed_kwargs(**renames: str) -> Callable[[F], F]:
    """Accept each old keyword ``old=new`` as ``new`` (a ``DeprecationWarning``; ``new`` wins when both are given).

    Example:
        >>> @renamed_kwargs(sentences="inputs")
        ... def encode(inputs):
        ...     return inputs
        >>> import warnings; warnings.simplefilter("ignore")
        >>> encode(sentences=["a"])
        ['a']
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    warnings.warn(f"`{old}` was renamed to `{new}` (as in sentence-transformers); pass `{new}=`.",
                                  DeprecationWarning, stacklevel=2)
                    value = kwargs.pop(old)
                    kwargs.setdefault(new, value)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def legacy_positional(names: tuple[str, ...]) -> Callable[[F], F]:
    """Map positional arguments after the first onto keyword-only ``names`` (sentence-transformers' old order).

    Example:
        >>> @legacy_positional(("num_labels", "max_length"))
        ... def init(self, model, *, num_labels=None, max_length=None):
        ...     return model, num_labels, max_length
        >>> init(None, "m", 3)
        ('m', 3, None)
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if len(args) > 1 + len(names):
                raise InputValueError(
                    f"{func.__qualname__} takes at most {1 + len(names)} positional arguments "
                    f"(the model, then {', '.join(names)}); got {len(args)}. Pass the others by keyword."
                )
            for name, value in zip(names, args[1:]):
                if name in kwargs:
                    raise InputValueError(f"`{name}` was given both by position and by keyword; pass it once.")
                kwargs[name] = value
            return func(self, *args[:1], **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


_WAYS_OUT = {
    "pool": "encoding already uses every core of this machine; for many machines use st_plugins.ray "
            "(embed_dataset / rerank_dataset)",
    "modules": "build the model with sentence-transformers, save it, and load the saved folder",
    "prompt_name": "cross-encoder prompts are not supported; put the instruction into the query text",
    "prompt": "cross-encoder prompts are not supported; put the instruction into the query text",
    "prompts": "cross-encoder prompts are not supported; put the instruction into the query text",
    "default_prompt_name": "cross-encoder prompts are not supported; put the instruction into the query text",
    "keep_in_fp32_modules": "st_plugins keeps every module in the dtype of `model_kwargs['dtype']`",
}


def refuse_unsupported(**given: Any) -> None:
    """Raise :class:`InputValueError` for the first option given a value (not ``None``) that we do not implement.

    Example:
        >>> refuse_unsupported(pool=None)
        >>> refuse_unsupported(pool={"processes": 2})
        Traceback (most recent call last):
        ...
        st_plugins.errors.InputValueError: `pool` is not supported by st_plugins (got dict): encoding already ...
    """
    for name, value in given.items():
        if value is not None:
            raise InputValueError(f"`{name}` is not supported by st_plugins (got {type(value).__name__}): "
                                  f"{_WAYS_OUT.get(name, 'leave it unset')}.")
