"""Correlation and ranking metrics in numpy, equal to scipy's and scikit-learn's on the same data.

``pearson``/``spearman`` match ``scipy.stats.pearsonr``/``spearmanr`` (average ranks for ties);
``ndcg_at_k`` matches ``sklearn.metrics.ndcg_score`` (tie-averaged gains); ``average_precision``
matches ``sklearn.metrics.average_precision_score``; ``mrr_at_k`` is sentence-transformers' MRR.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pearson", "spearman", "rankdata", "mrr_at_k", "ndcg_at_k", "average_precision"]


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation.

    Example:
        >>> round(pearson([1, 2, 3], [2, 4, 7]), 4)
        0.9934
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1.0, 1.0)) if denom else float("nan")


def rankdata(x: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties get their average rank (``scipy.stats.rankdata(method="average")``).

    Example:
        >>> rankdata([10, 20, 10, 5]).tolist()
        [2.5, 4.0, 2.5, 1.0]
    """
    a = np.asarray(x, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    starts = np.r_[True, sorted_a[1:] != sorted_a[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(a)] - 1
    ranks = np.empty(len(a))
    ranks[order] = (first[group] + last[group]) / 2.0 + 1.0
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson of average ranks).

    Example:
        >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
        0.8
    """
    return pearson(rankdata(x), rankdata(y))


def mrr_at_k(is_relevant: Sequence[int], scores: Sequence[float], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top ``k`` (0 when none)."""
    ranking = np.argsort(np.asarray(scores))[::-1]
    for rank, index in enumerate(ranking[:k]):
        if is_relevant[index]:
            return 1.0 / (rank + 1)
    return 0.0


def _discounts(n: int, k: int) -> np.ndarray:
    discount = 1.0 / np.log2(np.arange(n) + 2)
    discount[k:] = 0.0
    return discount


def ndcg_at_k(relevance: Sequence[float], scores: Sequence[float], k: int = 10) -> float:
    """NDCG@k with gains averaged over tied scores (scikit-learn's default).

    Example:
        >>> round(ndcg_at_k([0, 1, 0], [0.9, 0.5, 0.1], k=10), 4)
        0.6309
    """
    gains = np.asarray(relevance, dtype=np.float64)
    discount = _discounts(len(gains), k)
    _, inverse, counts = np.unique(-np.asarray(scores, dtype=np.float64), return_inverse=True, return_counts=True)
    group_gain = np.zeros(len(counts))
    np.add.at(group_gain, inverse.ravel(), gains)
    cumulative = np.cumsum(discount)[np.cumsum(counts) - 1]
    dcg = float((group_gain / counts * np.diff(np.r_[0.0, cumulative])).sum())
    ideal = float(np.sort(gains)[::-1] @ discount)
    return dcg / ideal if ideal > 0 else 0.0


def average_precision(is_relevant: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the precision-recall step curve, one step per distinct score.

    Example:
        >>> round(average_precision([1, 0, 1], [0.9, 0.8, 0.1]), 4)
        0.8333
    """
    y = np.asarray(is_relevant, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(y) - 1]
    true_pos = np.cumsum(y)[ends]
    if true_pos[-1] == 0:
        return 0.0
    precision = true_pos / (ends + 1)
    recall = true_pos / true_pos[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
