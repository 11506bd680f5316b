"""Evaluators with sentence-transformers' names, arguments, metric keys and figures.

Each is called as ``evaluator(model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]``
and names its main figure in ``primary_metric`` (the trainer keeps the checkpoint that maximises it).
With ``output_path`` and ``write_csv`` a row is appended to a CSV named as sentence-transformers names it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from st_plugins.core.validation import check_choice
from st_plugins.errors import InputValueError
from st_plugins.training import metrics as m

__all__ = ["EmbeddingSimilarityEvaluator", "CrossEncoderCorrelationEvaluator", "CrossEncoderRerankingEvaluator"]

SIMILARITIES = ("cosine", "dot", "euclidean", "manhattan")


class _Evaluator:
    csv_file = ""
    csv_headers: list[str] = []
    primary_metric = ""

    def _prefix(self, metrics: dict[str, float]) -> dict[str, float]:
        metrics = {k: float(v) for k, v in metrics.items()}
        if not self.name:
            return metrics
        if not self.primary_metric.startswith(self.name + "_"):
            self.primary_metric = f"{self.name}_{self.primary_metric}"
        return {f"{self.name}_{k}": v for k, v in metrics.items()}

    def _write_csv(self, output_path: str | None, row: list[Any]) -> None:
        if output_path is None or not self.write_csv:
            return
        os.makedirs(output_path, exist_ok=True)
        path = os.path.join(output_path, self.csv_file)
        new = not os.path.isfile(path)
        with open(path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(self.csv_headers)
            writer.writerow(row)


def _check_lengths(**columns: Sequence[Any]) -> None:
    sizes = {name: len(col) for name, col in columns.items()}
    if len(set(sizes.values())) != 1:
        raise InputValueError(f"{', '.join(f'`{n}`' for n in sizes)} must have the same length; got {sizes}.")


class EmbeddingSimilarityEvaluator(_Evaluator):
    """Spearman and Pearson correlation between gold scores and embedding similarities.

    Args:
        sentences1: First sentence of each pair.
        sentences2: Second sentence of each pair.
        scores: Gold similarity of each pair.
        batch_size: Encoding batch size.
        main_similarity: Similarity whose Spearman is the primary metric.
        similarity_fn_names: Similarities to report (default: ``main_similarity`` or the model's).
        name: Prefix of the metric keys.
        truncate_dim: Keep the first ``truncate_dim`` dimensions.

    Example:
        >>> ev = EmbeddingSimilarityEvaluator(["a", "b"], ["c", "d"], [1.0, 0.0], name="sts-dev")
        >>> ev.csv_file
        'similarity_evaluation_sts-dev_results.csv'
    """

    def __init__(self, sentences1: Sequence[str], sentences2: Sequence[str], scores: Sequence[float],
                 batch_size: int = 16, main_similarity: str | None = None, similarity_fn_names: Sequence[str] | None = None,
                 name: str = "", show_progress_bar: bool = False, write_csv: bool = True, truncate_dim: int | None = None) -> None:
        _check_lengths(sentences1=sentences1, sentences2=sentences2, scores=scores)
        self.sentences1, self.sentences2, self.scores = list(sentences1), list(sentences2), list(scores)
        self.main_similarity = None if main_similarity is None else check_choice(str(getattr(main_similarity, "value", main_similarity)), SIMILARITIES, "main_similarity")
        self.similarity_fn_names = [check_choice(n, SIMILARITIES, "similarity_fn_names") for n in similarity_fn_names or []]
        if not self.similarity_fn_names and self.main_similarity:
            self.similarity_fn_names = [self.main_similarity]
        self.batch_size, self.name, self.show_progress_bar = batch_size, name, show_progress_bar
        self.write_csv, self.truncate_dim = write_csv, truncate_dim
        self.csv_file = "similarity_evaluation" + (f"_{name}" if name else "") + "_results.csv"

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        from st_plugins.core import similarity

        kwargs = dict(batch_size=self.batch_size, show_progress_bar=self.show_progress_bar, convert_to_numpy=True,
                      truncate_dim=self.truncate_dim)
        emb1, emb2 = model.encode(self.sentences1, **kwargs), model.encode(self.sentences2, **kwargs)
        names = self.similarity_fn_names or [model.similarity_fn_name]
        results: dict[str, float] = {}
        for fn_name in names:
            pairwise = getattr(similarity, {"cosine": "pairwise_cos_sim", "dot": "pairwise_dot_score"}.get(fn_name, f"pairwise_{fn_name}_sim"))
            predicted = pairwise(emb1, emb2).detach().cpu().numpy()
            results[f"pearson_{fn_name}"] = m.pearson(self.scores, predicted)
            results[f"spearman_{fn_name}"] = m.spearman(self.scores, predicted)
        self.csv_headers = ["epoch", "steps"] + [f"{n}_{k}" for n in names for k in ("pearson", "spearman")]
        self._write_csv(output_path, [epoch, steps] + [results[f"{k}_{n}"] for n in names for k in ("pearson", "spearman")])
        if len(names) > 1:
            results["pearson_max"] = max(results[f"pearson_{n}"] for n in names)
            results["spearman_max"] = max(results[f"spearman_{n}"] for n in names)
        self.primary_metric = (f"spearman_{self.main_similarity}" if self.main_similarity
                               else "spearman_max" if len(names) > 1 else f"spearman_{names[0]}")
        return self._prefix(results)


class CrossEncoderCorrelationEvaluator(_Evaluator):
    """Spearman and Pearson correlation between gold scores and ``model.predict`` scores.

    Args:
        sentence_pairs: ``[(text1, text2), ...]``.
        scores: Gold score of each pair.
        name: Prefix of the metric keys.
        batch_size: Prediction batch size.
    """

    csv_headers = ["epoch", "steps", "Pearson_Correlation", "Spearman_Correlation"]

    def __init__(self, sentence_pairs: Sequence[Sequence[str]], scores: Sequence[float], name: str = "",
                 batch_size: int = 32, show_progress_bar: bool | None = None, write_csv: bool = True) -> None:
        _check_lengths(sentence_pairs=sentence_pairs, scores=scores)
        self.sentence_pairs, self.scores = [list(p) for p in sentence_pairs], list(scores)
        self.name, self.batch_size, self.show_progress_bar, self.write_csv = name, batch_size, bool(show_progress_bar), write_csv
        self.csv_file = "CrossEncoderCorrelationEvaluator" + (f"_{name}" if name else "") + "_results.csv"
        self.primary_metric = "spearman"

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        predicted = model.predict(self.sentence_pairs, batch_size=self.batch_size, convert_to_numpy=True,
                                  show_progress_bar=self.show_progress_bar)
        pearson, spearman = m.pearson(self.scores, predicted), m.spearman(self.scores, predicted)
        self._write_csv(output_path, [epoch, steps, pearson, spearman])
        return self._prefix({"pearson": pearson, "spearman": spearman})


class CrossEncoderRerankingEvaluator(_Evaluator):
    """MAP, MRR@k and NDCG@k of reranking each query's documents with ``model.predict``.

    Args:
        samples: ``{"query": str, "positive": [str, ...], "negative": [str, ...]}`` or, instead of
            ``"negative"``, ``"documents"`` (a retriever's ranked list; ``base_*`` metrics are added).
        at_k: Cut-off of MRR and NDCG.
        always_rerank_positives: With ``"documents"``, rerank positives missing from the list too.
        name: Prefix of the metric keys.
        batch_size: Prediction batch size.
    """

    def __init__(self, samples: Sequence[dict[str, Any]] | dict[str, dict[str, Any]], at_k: int = 10,
                 always_rerank_positives: bool = True, name: str = "", batch_size: int = 64,
                 show_progress_bar: bool = False, write_csv: bool = True) -> None:
        self.samples = list(samples.values()) if isinstance(samples, dict) else list(samples)
        self.at_k, self.always_rerank_positives = at_k, always_rerank_positives
        self.name, self.batch_size, self.show_progress_bar, self.write_csv = name, batch_size, show_progress_bar, write_csv
        self.csv_file = "CrossEncoderRerankingEvaluator" + (f"_{name}" if name else "") + f"_results_@{at_k}.csv"
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{at_k}", f"NDCG@{at_k}"]
        self.primary_metric = f"ndcg@{at_k}"

    def _candidates(self, index: int, sample: dict[str, Any]) -> tuple[list[str], list[int], tuple | None]:
        if "query" not in sample or "positive" not in sample or (("negative" in sample) == ("documents" in sample)):
            raise InputValueError(
                f"`samples[{index}]` must have 'query', 'positive' and exactly one of 'negative' and 'documents'; "
                f"got keys {sorted(sample)}."
            )
        positive = [sample["positive"]] if isinstance(sample["positive"], str) else list(sample["positive"])
        documents = sample.get("documents")
        if not documents:
            docs = positive + list(sample.get("negative") or [])
            return docs, [1] * len(positive) + [0] * (len(docs) - len(positive)), None
        relevant = [int(d in positive) for d in documents]
        base = (0.0, 0.0, 0.0)
        if sum(relevant):
            relevant_all = relevant + [1] * (len(positive) - sum(relevant))
            base = self._metrics(relevant_all, np.arange(len(relevant_all), 0, -1))
        if self.always_rerank_positives:
            docs = positive + [d for d in documents if d not in positive]
            return docs, [1] * len(positive) + [0] * (len(docs) - len(positive)), base
        return list(documents), relevant, base

    def _metrics(self, relevant: list[int], scores: Any) -> tuple[float, float, float]:
        return (m.mrr_at_k(relevant, scores, self.at_k), m.ndcg_at_k(relevant, scores, self.at_k),
                m.average_precision(relevant, scores))

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        pairs, plans, bases = [], [], []
        for i, sample in enumerate(self.samples):
            docs, relevant, base = self._candidates(i, sample)
            if base is not None:
                bases.append(base)
            plans.append((relevant, len(docs)) if sum(relevant) else None)
            if sum(relevant):
                pairs.extend([sample["query"], d] for d in docs)
        predicted = (model.predict(pairs, batch_size=self.batch_size, convert_to_numpy=True,
                                   show_progress_bar=self.show_progress_bar) if pairs else np.array([]))
        per_query, offset = [], 0
        for plan in plans:
            if plan is None:
                per_query.append((0.0, 0.0, 0.0))
                continue
            per_query.append(self._metrics(plan[0], predicted[offset: offset + plan[1]]))
            offset += plan[1]
        mrr, ndcg, ap = np.mean(per_query, axis=0) if per_query else (0.0, 0.0, 0.0)
        self._write_csv(output_path, [epoch, steps, ap, mrr, ndcg])
        results = {"map": ap, f"mrr@{self.at_k}": mrr, f"ndcg@{self.at_k}": ndcg}
        if bases:
            base_mrr, base_ndcg, base_ap = np.mean(bases, axis=0)
            results.update({"base_map": base_ap, f"base_mrr@{self.at_k}": base_mrr, f"base_ndcg@{self.at_k}": base_ndcg})
        return self._prefix(results)
