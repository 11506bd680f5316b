"""Tokenize once, order by token length, pad per batch: little padding, input order restored."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["tokenize", "length_order", "padded_batches", "add_lowercase"]


def add_lowercase(tokenizer: Any) -> None:
    """Make a fast tokenizer lowercase its input (sentence-transformers' ``do_lower_case``)."""
    if not getattr(tokenizer, "is_fast", False):
        tokenizer.do_lower_case = True
        return
    from tokenizers.normalizers import Lowercase, Sequence as NormSeq

    current = tokenizer.backend_tokenizer.normalizer
    if current is not None and "Lowercase" in repr(current):
        return
    parts = [Lowercase()] + ([] if current is None else list(current) if isinstance(current, NormSeq) else [current])
    tokenizer.backend_tokenizer.normalizer = NormSeq(parts)


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int | None, pairs: Sequence[str] | None = None) -> dict[str, list[list[int]]]:
    """Token ids (no padding) truncated to ``max_length`` (``longest_first`` for pairs)."""
    if not texts:
        return {"input_ids": []}
    enc = tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation="longest_first" if max_length is not None else False,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
    )
    return {k: v for k, v in enc.items() if k in ("input_ids", "token_type_ids")}


def length_order(encodings: dict[str, list[list[int]]]) -> np.ndarray:
    """Indices from longest to shortest input (stable), as sentence-transformers orders batches."""
    lengths = np.fromiter((len(ids) for ids in encodings["input_ids"]), dtype=np.int64)
    return np.argsort(-lengths, kind="stable")


def _pad(rows: list[list[int]], value: int, left: bool) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), value, dtype=np.int64)
    for i, r in enumerate(rows):
        if left:
            out[i, width - len(r):] = r
        else:
            out[i, : len(r)] = r
    return torch.from_numpy(out)


def padded_batches(
    tokenizer: Any, encodings: dict[str, list[list[int]]], order: np.ndarray, batch_size: int
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Yield ``(indices, features)`` with ``input_ids``, ``attention_mask`` (+ ``token_type_ids``)."""
    left = getattr(tokenizer, "padding_side", "right") == "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids = [encodings["input_ids"][i] for i in idx]
        feats = {
            "input_ids": _pad(ids, pad_id, left),
            "attention_mask": _pad([[1] * len(r) for r in ids], 0, left),
        }
        if "token_type_ids" in encodings:
            feats["token_type_ids"] = _pad([encodings["token_type_ids"][i] for i in idx], 0, left)
        yield idx, feats
