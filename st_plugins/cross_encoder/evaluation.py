"""Cross-encoder evaluators under sentence-transformers' module path (``sentence_transformers.cross_encoder.evaluation``).

Example:
    >>> from st_plugins.cross_encoder.evaluation import CrossEncoderRerankingEvaluator
    >>> CrossEncoderRerankingEvaluator([], at_k=10).primary_metric
    'ndcg@10'
"""

from __future__ import annotations

from st_plugins.training.evaluators import CrossEncoderCorrelationEvaluator, CrossEncoderRerankingEvaluator

__all__ = ["CrossEncoderCorrelationEvaluator", "CrossEncoderRerankingEvaluator"]
