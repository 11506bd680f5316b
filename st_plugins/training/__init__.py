"""Fine-tuning for bi-encoders, cross-encoders and image-text models: losses, evaluators, a plain-torch trainer
and recipes.

Names load lazily (torch is imported on first use). The trained models' names and folders are
in :mod:`st_plugins.training.named`.

Example:
    >>> from st_plugins.training import Example, TrainingArguments
    >>> TrainingArguments(epochs=2).epochs
    2
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Example", "TrainingArguments", "TrainResult", "Trainer",
    "MultipleNegativesRankingLoss", "CoSENTLoss", "CosineSimilarityLoss",
    "BinaryCrossEntropyLoss", "CrossEntropyLoss", "MSELoss",
    "EmbeddingSimilarityEvaluator", "CrossEncoderCorrelationEvaluator", "CrossEncoderRerankingEvaluator",
    "train_stsb_reranker", "finetune_bi_encoder_cosent",
    "ImageTextModel", "train_clip_digits",
]

_HOMES = {
    "st_plugins.training.trainer": __all__[:4],
    "st_plugins.training.losses": __all__[4:10],
    "st_plugins.training.evaluators": __all__[10:13],
    "st_plugins.training.recipes": __all__[13:15],
    "st_plugins.training.image_text": __all__[15:16],
    "st_plugins.training.clip_digits": __all__[16:],
}
_LAZY = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as exc:
            if exc.name not in ("torch", "transformers"):
                raise
            from st_plugins.core.extras import torch_missing

            raise torch_missing(f"Training ({name}) needs {exc.name}", exc.name) from exc
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'st_plugins.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
