"""Hypothesis strategies for fuzzing every public entry point, and the one property they all share.

The property (:func:`outcome`): a call either returns, or raises an :class:`~st_plugins.errors.StPluginsError`
whose message names the parameter (or the index) at fault; anything else (a bare ``TypeError`` from
tokenizers, a ``RuntimeError`` from torch or onnxruntime, a crash) fails the test.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Callable

import numpy as np
import pandas as pd
from hypothesis import settings
from hypothesis import strategies as st

from st_plugins.errors import StPluginsError

TOL = {"atol": 1e-5, "rtol": 1e-4}


def budget(fraction: float = 1.0) -> settings:
    """The loaded profile's ``max_examples`` times ``fraction`` (at least 3): slow properties run fewer examples."""
    return settings(max_examples=max(3, round(settings.default.max_examples * fraction)))


# ----------------------------------------------------------------------------- texts
#: Texts that stress tokenizers: empty, NUL and control characters, mixed scripts, emoji (with ZWJ and
#: skin tones), combining marks, right-to-left, whitespace only, and 100,000 characters.
SPECIAL_TEXTS = ["", " ", "\x00", "a\x00b", "\x01\x02\x1b[31m\x7f", "\t\n\r\x0b\x0c", "\u200b\u200d\ufeff",
                 "Ünïcödé 漢字 かな 한국어 العربية עברית हिन्दी", "👩‍👩‍👧‍👦 👍🏽 🏳️‍🌈 🙂", "e\u0301\u0301\u0301",
                 "\U0010ffff\U0001f600", "A man is eating pasta.", "x" * 100_000, "word " * 20_000,
                 "漢" * 100_000]
#: Valid Unicode (no lone surrogates: every tokenizer refuses them).
valid_texts = st.one_of(st.sampled_from(SPECIAL_TEXTS), st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
                        st.text(alphabet="ab \x00🙂漢", max_size=12))
#: A str holding a lone surrogate, somewhere.
surrogate_texts = st.builds(lambda a, s, b: a + s + b, st.text(max_size=3),
                            st.sampled_from(["\ud800", "\udfff", "\udc80"]), st.text(max_size=3))
#: Items that are not text at all.
non_texts = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=4),
                      st.lists(st.text(max_size=2), max_size=2),
                      st.dictionaries(st.text(max_size=2), st.integers(), max_size=1), st.just(np.float32(1.5)),
                      st.just(object()), st.just(pd.NA), st.tuples(st.text(max_size=2)))
bad_text_items = st.one_of(surrogate_texts, non_texts)
text_lists = st.lists(valid_texts, max_size=6)


#: The same list of texts in the containers callers pass: each must give what the list gives.
CONTAINERS: dict[str, Callable[[list[str]], Any]] = {
    "list": list, "tuple": tuple, "generator": lambda xs: (x for x in xs),
    "numpy object": lambda xs: np.array(xs, dtype=object),
    "numpy str": lambda xs: np.array(xs, dtype=str) if xs else np.array([], dtype=str),
    "pandas Series": lambda xs: pd.Series(xs, dtype=object),
}
containers = st.sampled_from(sorted(CONTAINERS))


@st.composite
def lists_with_one_bad_item(draw: Any, good: st.SearchStrategy = valid_texts, bad: st.SearchStrategy = bad_text_items):
    """``(items, index)``: a list of valid items with one bad item at ``index``."""
    items = draw(st.lists(good, max_size=4))
    index = draw(st.integers(0, len(items)))
    return items[:index] + [draw(bad)] + items[index:], index


def survives_numpy(items: list[str]) -> bool:
    """``np.array(items, dtype=str)`` strips trailing NULs: such texts are not the same text in a str array."""
    return not any(t.endswith("\x00") for t in items)


def oracle_pair(a: str, b: str) -> tuple[str, str]:
    """The pair to give sentence-transformers: two texts both past 2,000 characters cost tokenizers' pair
    truncation minutes and gigabytes (st_plugins cuts them at a word end first), so it gets their first 2,000
    characters, which keep the same tokens through truncation for the repetitive long texts above."""
    return (a[:2000], b[:2000]) if min(len(a), len(b)) > 2000 else (a, b)


# ----------------------------------------------------------------------------- numeric options
#: Values for int options (batch_size, top_k, truncate_dim, ...): valid ones and every kind of wrong one.
int_options = st.one_of(st.integers(-3, 40), st.sampled_from([10**30, -(10**30), 2**63]), st.just(np.int64(3)),
                        st.floats(allow_nan=True), st.sampled_from([True, False, None, "3", "", b"3", 2.0, [3]]))
#: Values for float options (threshold, score_threshold): finite numbers and wrong ones.
real_options = st.one_of(st.floats(-2, 2), st.sampled_from([math.nan, math.inf, -math.inf, True, None, "0.5", [0.5]]),
                         st.integers(-2, 2))


def is_valid_text(value: Any) -> bool:
    """A str without lone surrogates."""
    return isinstance(value, str) and value.encode("utf-8", "surrogatepass") == value.encode("utf-8", "replace")


def is_positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and value > 0


def is_finite_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


# ----------------------------------------------------------------------------- embeddings
@st.composite
def embedding_matrices(draw: Any, rows: tuple[int, int] = (0, 12), dim: int | None = None):
    """Float32 matrices with fixed-seed values (ties and zero rows included), at most 12 x 8."""
    n = draw(st.integers(*rows))
    d = dim or draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**16))
    values = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    if n and draw(st.booleans()):
        values[draw(st.integers(0, n - 1))] = values[0]  # a duplicate row: exact ties
    return np.round(values, 1)


#: Things that are not embeddings.
bad_embeddings = st.sampled_from([None, "abc", b"ab", 3.0, {"a": 1}, [[1.0, 2.0], [1.0]], np.array([["a", "b"]]),
                                  np.array([[1.0, 2.0]], dtype=object), np.ones((2, 2, 2), np.float32),
                                  np.ones((1, 2), np.complex64), np.array(1.0)])


# ----------------------------------------------------------------------------- the property
def outcome(call: Callable[[], Any]) -> tuple[Any, StPluginsError | None]:
    """``(result, None)`` or ``(None, error)`` for a typed error; any other exception propagates (a failure)."""
    try:
        return call(), None
    except StPluginsError as exc:
        return None, exc


def assert_names(error: BaseException | None, *names: str) -> None:
    """``error`` is a typed error whose message names one of ``names`` (a parameter or an index, e.g. ``inputs[2]``)."""
    assert isinstance(error, StPluginsError), f"expected a typed error naming {names}; got {error!r}"
    message = str(error)
    assert any(name in message for name in names), f"{message!r} names none of {names}"
    received = "got" in message or " is not " in message or re.search(r" '[^']*' ", message)
    assert received, f"{message!r} does not say what was received"
