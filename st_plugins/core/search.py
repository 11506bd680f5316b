"""Search utilities with sentence-transformers' signatures and results."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from st_plugins.core.similarity import _topk, cos_sim, normalize_embeddings, to_tensor
from st_plugins.core.validation import check_positive_int, check_real
from st_plugins.errors import InputValueError

__all__ = ["semantic_search", "paraphrase_mining", "paraphrase_mining_embeddings", "community_detection"]


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: Callable[[Any, Any], Any] = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """For each query, the ``top_k`` corpus entries ``{"corpus_id", "score"}``, best first.

    Example:
        >>> hits = semantic_search([[1.0, 0.0]], [[0.0, 1.0], [1.0, 0.1]], top_k=1)
        >>> hits[0][0]["corpus_id"], round(hits[0][0]["score"], 4)
        (1, 0.995)
    """
    query_chunk_size, corpus_chunk_size, top_k = (check_positive_int(query_chunk_size, "query_chunk_size"),
                                                  check_positive_int(corpus_chunk_size, "corpus_chunk_size"),
                                                  check_positive_int(top_k, "top_k"))
    queries, corpus = to_tensor(query_embeddings, "query_embeddings"), to_tensor(corpus_embeddings, "corpus_embeddings")
    if queries.shape[1] != corpus.shape[1] and len(queries) and len(corpus):
        raise InputValueError(f"`query_embeddings` and `corpus_embeddings` must have the same dimension; got "
                              f"{queries.shape[1]} and {corpus.shape[1]}.")
    if isinstance(queries, np.ndarray):
        queries = queries.astype(np.result_type(queries.dtype, corpus.dtype), copy=False)
    else:
        import torch

        queries = queries.to(corpus.device, torch.promote_types(queries.dtype, corpus.dtype))
    results: list[list[tuple[float, int]]] = [[] for _ in range(len(queries))]
    for c_start in range(0, len(corpus), corpus_chunk_size):
        chunk = corpus[c_start : c_start + corpus_chunk_size]
        for q_start in range(0, len(queries), query_chunk_size):
            scores = score_function(queries[q_start : q_start + query_chunk_size], chunk)
            values, idx = _topk(scores, min(top_k, scores.shape[1]))
            for q, (vals, ids) in enumerate(zip(_rows(values), _rows(idx + c_start))):
                heap = results[q_start + q]
                for cand in zip(vals, ids):
                    (heapq.heappush if len(heap) < top_k else heapq.heappushpop)(heap, cand)
    return [[{"corpus_id": i, "score": s} for s, i in sorted(h, key=lambda x: x[0], reverse=True)] for h in results]


def paraphrase_mining(model: Any, sentences: list[str], show_progress_bar: bool = False, batch_size: int = 32,
                      query_chunk_size: int = 5000, corpus_chunk_size: int = 100000, max_pairs: int = 500000,
                      top_k: int = 100, score_function: Callable[[Any, Any], Any] = cos_sim,
                      truncate_dim: int | None = None, prompt_name: str | None = None,
                      prompt: str | None = None) -> list[list[float | int]]:
    """Pairs ``[score, i, j]`` (``i < j``) of the most similar sentences, best first."""
    _check_mining(query_chunk_size, corpus_chunk_size, max_pairs, top_k)
    emb = model.encode(sentences, show_progress_bar=show_progress_bar, batch_size=batch_size, convert_to_tensor=True,
                       truncate_dim=truncate_dim, prompt_name=prompt_name, prompt=prompt)
    return paraphrase_mining_embeddings(emb, query_chunk_size, corpus_chunk_size, max_pairs, top_k, score_function)


def paraphrase_mining_embeddings(embeddings: Any, query_chunk_size: int = 5000, corpus_chunk_size: int = 100000,
                                 max_pairs: int = 500000, top_k: int = 100,
                                 score_function: Callable[[Any, Any], Any] = cos_sim) -> list[list[float | int]]:
    _check_mining(query_chunk_size, corpus_chunk_size, max_pairs, top_k)
    emb = to_tensor(embeddings)
    pairs: list[tuple[float, int, int]] = []
    queued: set[tuple[int, int]] = set()
    min_score = float("-inf")
    for q_start in range(0, len(emb), query_chunk_size):
        scores = score_function(emb[q_start : q_start + query_chunk_size], emb)
        values, idx = _topk(scores, min(top_k + 1, scores.shape[1]))
        for q, (vals, ids) in enumerate(zip(_rows(values), _rows(idx))):
            i = q_start + q
            for j, score in [(j, s) for j, s in zip(ids, vals) if j != i][:top_k]:
                pair = (min(i, j), max(i, j))
                if score <= min_score or pair in queued:
                    continue
                queued.add(pair)
                if len(pairs) < max_pairs:
                    heapq.heappush(pairs, (score, *pair))
                else:
                    evicted = heapq.heappushpop(pairs, (score, *pair))
                    queued.discard(evicted[1:])
                    min_score = evicted[0]
    return sorted(([s, i, j] for s, i, j in pairs), key=lambda x: x[0], reverse=True)


def community_detection(embeddings: Any, threshold: float = 0.75, min_community_size: int = 10,
                        batch_size: int = 1024, show_progress_bar: bool = False) -> list[list[int]]:
    """Groups whose members have cosine ≥ ``threshold`` to a centre; largest first, centre first."""
    threshold = check_real(threshold, "threshold")
    min_community_size = check_positive_int(min_community_size, "min_community_size")
    batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(embeddings, (list, tuple)) and len(embeddings) == 0:
        return []
    emb = normalize_embeddings(to_tensor(embeddings))
    if len(emb) == 0:
        return []
    if len(emb) < min_community_size:
        return []
    sort_max = min(max(2 * min_community_size, 50), len(emb))
    found = []
    for start in tqdm(range(0, len(emb), batch_size), desc="Finding clusters", disable=not show_progress_bar):
        scores = emb[start : start + batch_size] @ emb.T
        top_vals, _ = _topk(scores, min_community_size)
        for i in range(len(top_vals)):
            if top_vals[i][-1] >= threshold:
                vals, ids = _topk(scores[i], sort_max)
                while vals[-1] >= threshold and sort_max < len(emb):
                    sort_max = min(2 * sort_max, len(emb))
                    vals, ids = _topk(scores[i], sort_max)
                found.append((start + i, _numpy(ids[vals >= threshold]).astype(np.uint32)))
    found.sort(key=lambda x: len(x[1]), reverse=True)
    used = np.zeros(len(emb), dtype=bool)
    unique = []
    for centre, members in found:
        if used[centre]:
            continue
        fresh = members[~used[members]]
        if len(fresh) >= min_community_size:
            community = [centre] + fresh[fresh != centre].tolist()
            unique.append(community)
            used[community] = True
    return sorted(unique, key=len, reverse=True)


def _rows(x: Any) -> list:
    return x.tolist() if isinstance(x, np.ndarray) else x.cpu().tolist()


def _numpy(x: Any) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else x.cpu().numpy()


def _check_mining(query_chunk_size: Any, corpus_chunk_size: Any, max_pairs: Any, top_k: Any) -> None:
    for value, name in ((query_chunk_size, "query_chunk_size"), (corpus_chunk_size, "corpus_chunk_size"),
                        (max_pairs, "max_pairs"), (top_k, "top_k")):
        check_positive_int(value, name)
