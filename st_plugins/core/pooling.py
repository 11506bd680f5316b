"""Pure pooling functions: token vectors + attention mask -> one vector per input.

Each mode matches sentence-transformers' ``Pooling`` on padded (right- or left-padded) batches.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["pool", "exclude_prompt"]


def exclude_prompt(mask: Tensor, prompt_length: int) -> Tensor:
    """Zero the first ``prompt_length`` real tokens of each row (a copy; handles left padding)."""
    mask = mask.clone()
    pad = mask.to(torch.int32).argmax(dim=1)
    positions = torch.arange(mask.size(1), device=mask.device).unsqueeze(0)
    mask[positions < (pad + prompt_length).unsqueeze(1)] = 0
    return mask


def _cls(tokens: Tensor, mask: Tensor) -> Tensor:
    first = mask.to(torch.int).argmax(dim=1)
    idx = first.view(-1, 1, 1).expand(-1, 1, tokens.size(-1))
    return tokens.gather(1, idx).squeeze(1)


def _max(tokens: Tensor, mask: Tensor) -> Tensor:
    return tokens.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).max(dim=1).values


def _sum_and_count(tokens: Tensor, mask: Tensor, acc: torch.dtype) -> tuple[Tensor, Tensor]:
    m = mask.unsqueeze(-1).to(tokens.dtype)
    total = (tokens * m).sum(dim=1, dtype=acc)
    return total, torch.clamp(m.sum(dim=1, dtype=acc), min=1e-9)


def _weighted_mean(tokens: Tensor, mask: Tensor, original: Tensor, acc: torch.dtype) -> Tensor:
    weights = torch.arange(1, tokens.size(1) + 1, device=tokens.device, dtype=acc).view(1, -1, 1)
    weights = weights - original.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
    weighted = mask.unsqueeze(-1).to(acc) * weights
    total = (tokens * weighted).sum(dim=1)
    return (total / torch.clamp(weighted.sum(dim=1), min=1e-9)).to(tokens.dtype)


def _last_token(tokens: Tensor, mask: Tensor) -> Tensor:
    seq_len = tokens.size(1)
    values, indices = mask.flip(1).max(1)
    indices = torch.where(values == 0, seq_len - 1, indices)
    idx = (seq_len - indices - 1).view(-1, 1, 1).expand(-1, 1, tokens.size(-1))
    masked = tokens * mask.unsqueeze(-1).to(tokens.dtype)
    return masked.gather(1, idx).squeeze(1)


def pool(tokens: Tensor, mask: Tensor, modes: tuple[str, ...], prompt_length: int | None = None) -> Tensor:
    """Pool ``tokens`` ``(batch, seq, dim)`` under ``mask`` ``(batch, seq)``; modes are concatenated.

    Example:
        >>> t = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])
        >>> m = torch.tensor([[1, 1, 0]])
        >>> pool(t, m, ("mean", "max", "cls", "lasttoken")).tolist()
        [[2.0, 3.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]]
    """
    original = mask
    if prompt_length:
        mask = exclude_prompt(mask, prompt_length)
    acc = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
    out: list[Tensor] = []
    sums = None
    for mode in modes:
        if mode == "cls":
            out.append(_cls(tokens, mask))
        elif mode == "max":
            out.append(_max(tokens, mask))
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            sums = sums or _sum_and_count(tokens, mask, acc)
            denom = sums[1] if mode == "mean" else torch.sqrt(sums[1])
            out.append((sums[0] / denom).to(tokens.dtype))
        elif mode == "weightedmean":
            out.append(_weighted_mean(tokens, mask, original, acc))
        elif mode == "lasttoken":
            out.append(_last_token(tokens, mask))
        else:
            raise ValueError(f"Unknown pooling mode {mode!r}.")
    return torch.cat(out, dim=-1)
