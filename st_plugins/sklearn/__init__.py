"""scikit-learn estimators over st_plugins models (install with ``pip install "st-plugins[sklearn]"``).

- :class:`EmbeddingTransformer`: texts -> sentence embeddings (a transformer for pipelines).
- :class:`ImageEmbeddingTransformer`: images or image paths -> embeddings of an image-text model.
- :class:`CrossEncoderScorer`: text pairs -> relevance scores (predict, decision_function,
  predict_proba, a learnable ``threshold``, Spearman ``score``).

All get their model from :func:`st_plugins.core.cache.get_model` in ``fit`` (one load per process)
and pickle without weights.
"""

from __future__ import annotations

from st_plugins.errors import require

require("sklearn", "sklearn")

from st_plugins.sklearn._embedding import EmbeddingTransformer  # noqa: E402
from st_plugins.sklearn._image import ImageEmbeddingTransformer  # noqa: E402
from st_plugins.sklearn._scorer import CrossEncoderScorer  # noqa: E402

__all__ = ["EmbeddingTransformer", "ImageEmbeddingTransformer", "CrossEncoderScorer"]
