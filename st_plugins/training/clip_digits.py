"""The digits recipe: a small CLIP-style image-text model trained offline on scikit-learn's digits.

``sklearn.datasets.load_digits()`` ships 1,797 8x8 greyscale handwritten digits (no download). The
split is fixed (:func:`digits_split`: a permutation seeded with :data:`SPLIT_SEED`, 1,200 train /
597 test, whatever the training seed). Each image is paired with its caption, ``"a handwritten
digit seven"`` (:func:`caption`).

The model is a transformers ``VisionTextDualEncoderModel``:

* image tower: a ``CLIPVisionModel`` trained from scratch (hidden 64, 3 layers, 4 heads, 16x16
  input in 4x4 patches). The saved ``CLIPImageProcessor`` resizes the 8x8 image to 16x16 itself
  (bicubic, no crop), so anyone with the folder gets the same preprocessing;
* text tower: the packaged all-MiniLM-L6-v2 ``BertModel``, **frozen** (only the text projection
  trains). Why frozen: the captions are ten fixed strings, so tuning 22M weights on them teaches
  the tower nothing but those strings and wears away what it knows of other text; the projection
  alone can place the ten caption vectors wherever the images need them. It is also cheaper (no
  backward pass through BERT), and the tower stays the shipped MiniLM, so queries phrased
  otherwise still land near the caption they resemble. (``get_text_features`` of this model type
  embeds the ``[CLS]`` token through BERT's pooler, then the projection.)
* projections: both towers to :data:`PROJECTION_DIM` dimensions, cosine similarity.

Loss: :class:`~st_plugins.training.MultipleNegativesRankingLoss` on ``(image, caption)`` columns
(scale 20, cosine, in-batch negatives), which is exactly ten-way classification of each image
against the captions in its batch. Two images of the same digit in a batch would make one's caption
a false negative of the other, so batches are built with ``no_duplicates=True``
(:func:`~st_plugins.training.trainer.no_duplicate_batches`, sentence-transformers'
``NO_DUPLICATES`` rule): every batch holds each caption at most once, i.e. at most ten pairs, one
per digit (the end of an epoch has a few shorter batches). To fight overfitting on 1,200 images,
the training set also holds :data:`SHIFTS` copies of each image shifted by one pixel.

Metrics on the 597 test images (:func:`evaluate`):

* ``accuracy``: zero-shot classification, each test image against the ten caption texts, the
  caption of highest cosine is the prediction;
* ``recall@10`` (text to image): for each of the ten caption queries, rank all 597 test images by
  cosine, take the top 10 and count the share that show that digit; the mean over the ten queries.
  Every digit has about 60 test images (more than 10), so this is also the precision at 10;
  1.0 means each caption's ten nearest images are all of its digit.

Example:
    >>> caption(7)
    'a handwritten digit seven'
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DIGIT_WORDS", "SPLIT_SEED", "TRAIN_SIZE", "QUICK_MIN_ACCURACY", "MIN_ACCURACY", "caption", "captions",
           "digits_images", "digits_split", "build_digits_model", "evaluate", "train_clip_digits", "DigitsResult",
           "clip_digits_dir"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLIT_SEED, TRAIN_SIZE = 0, 1200
BASE_TEXT_MODEL = "all-MiniLM-L6-v2"
IMAGE_SIZE, PATCH_SIZE, HIDDEN, LAYERS, HEADS, PROJECTION_DIM = 16, 4, 64, 3, 4, 64
EPOCHS, QUICK_EPOCHS, LEARNING_RATE, SHIFTS = 12, 3, 2e-3, 4
#: The bars: the full recipe's target and what ``--quick`` must reach (the command fails below it).
MIN_ACCURACY, QUICK_MIN_ACCURACY = 0.90, 0.80
FOLDER = "clip-digits"
THREADS = 1


def caption(digit: int) -> str:
    """The caption of ``digit`` (0-9): ``"a handwritten digit seven"``."""
    return f"a handwritten digit {DIGIT_WORDS[digit]}"


def captions() -> list[str]:
    """The ten captions, digit 0 first."""
    return [caption(d) for d in range(10)]


def clip_digits_dir() -> Path:
    """Default output folder of ``st-plugins train-clip-digits``: ``$ST_PLUGINS_HOME/clip-digits``."""
    from st_plugins.core.runtime.store import home_dir

    return home_dir() / FOLDER


def _digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images, data.target


def digits_images(arrays: np.ndarray | None = None) -> list:
    """RGB PIL images of 8x8 digit arrays (values 0..16 -> 0..255 uint8, grey copied to R, G and B).

    Args:
        arrays: ``(n, 8, 8)`` arrays as ``load_digits().images`` holds them (default: all 1,797).

    Example:
        >>> image = digits_images(np.full((1, 8, 8), 16.0))[0]
        >>> image.mode, image.size, image.getpixel((0, 0))
        ('RGB', (8, 8), (255, 255, 255))
    """
    from PIL import Image

    arrays = _digits()[0] if arrays is None else np.asarray(arrays)
    grey = np.clip(np.rint(arrays * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return [Image.fromarray(a, mode="L").convert("RGB") for a in grey]


def digits_split() -> dict[str, tuple[list, np.ndarray]]:
    """The fixed split: ``{"train": (images, labels), "test": (images, labels)}``, 1,200 / 597.

    A permutation of the 1,797 digits seeded with :data:`SPLIT_SEED` (independent of any training
    seed); its first 1,200 are the training set.
    """
    arrays, labels = _digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    parts = {"train": order[:TRAIN_SIZE], "test": order[TRAIN_SIZE:]}
    return {name: (digits_images(arrays[idx]), labels[idx]) for name, idx in parts.items()}


def _shifted(arrays: np.ndarray, shifts: int, seed: int) -> np.ndarray:
    """``shifts`` copies of each 8x8 array moved by one pixel in a random direction (edges filled with 0)."""
    rng = np.random.default_rng(seed)
    moves = [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]
    out = []
    for _ in range(shifts):
        for a in arrays:
            dy, dx = moves[rng.integers(len(moves))]
            out.append(np.pad(a, 1)[1 - dy: 9 - dy, 1 - dx: 9 - dx])
    return np.asarray(out).reshape(-1, 8, 8)


def build_digits_model(seed: int = 0, text_model: str | os.PathLike = BASE_TEXT_MODEL):
    """A fresh :class:`~st_plugins.training.image_text.ImageTextModel`: a random ``CLIPVisionModel`` (seeded) and
    MiniLM, frozen, as the towers of a ``VisionTextDualEncoderModel`` with its processor."""
    import torch
    from transformers import (AutoTokenizer, BertModel, CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel,
                              VisionTextDualEncoderConfig, VisionTextDualEncoderModel, VisionTextDualEncoderProcessor)

    from st_plugins.core.resolve import resolve_model_path
    from st_plugins.training.image_text import ImageTextModel

    text_path = str(resolve_model_path(str(text_model)))
    text = BertModel.from_pretrained(text_path, use_safetensors=True)
    torch.manual_seed(seed)
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                                              num_attention_heads=HEADS, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE,
                                              num_channels=3, projection_dim=PROJECTION_DIM))
    config = VisionTextDualEncoderConfig.from_vision_text_configs(vision.config, text.config,
                                                                  projection_dim=PROJECTION_DIM)
    model = VisionTextDualEncoderModel(config, vision_model=vision, text_model=text)
    image_processor = CLIPImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_center_crop=False,
                                         crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                         image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    processor = VisionTextDualEncoderProcessor(image_processor=image_processor,
                                               tokenizer=AutoTokenizer.from_pretrained(text_path))
    return ImageTextModel(model, processor, freeze_text=True)


def evaluate(model, images: list, labels: np.ndarray) -> dict[str, Any]:
    """Zero-shot ``accuracy``, text-to-image ``recall@10`` (see the module docstring) and the ``confusion`` matrix
    (rows: true digit, columns: predicted) of ``model`` (anything with ``encode(inputs)``) on ``images``."""
    labels = np.asarray(labels)
    texts = _unit(np.asarray(model.encode(captions())))
    vectors = _unit(np.asarray(model.encode(list(images))))
    scores = vectors @ texts.T  # (images, 10)
    predicted = scores.argmax(axis=1)
    top = np.argsort(-scores.T, axis=1, kind="stable")[:, :10]  # each caption's 10 nearest images
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    return {"accuracy": float((predicted == labels).mean()),
            "recall@10": float(np.mean([(labels[row] == d).mean() for d, row in enumerate(top)])),
            "confusion": confusion.tolist()}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class DigitsResult:
    """What the recipe made and measured (times in seconds)."""

    path: Path
    accuracy: float
    recall_at_10: float
    confusion: list[list[int]]
    quick: bool
    epochs: int
    steps: int
    train_examples: int
    wall_seconds: float
    cpu_seconds: float
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    #: The trained :class:`~st_plugins.training.image_text.ImageTextModel` (in eval mode), as saved.
    model: Any = field(default=None, repr=False, compare=False)

    def metrics(self) -> dict[str, Any]:
        """The figures as ``metrics.json`` holds them (no model; the machine added)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}
        data["path"] = str(self.path)
        data["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {_threads()}"
        return data


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def train_clip_digits(out: str | os.PathLike | None = None, *, quick: bool = False, seed: int = 0,
                      epochs: int | None = None, learning_rate: float = LEARNING_RATE, shifts: int = SHIFTS,
                      text_model: str | os.PathLike = BASE_TEXT_MODEL, threads: int | None = THREADS,
                      show_progress_bar: bool = True) -> DigitsResult:
    """Train the digits image-text model (see the module docstring), save it to ``out`` and measure it.

    The folder holds the model in sentence-transformers' layout
    (:meth:`~st_plugins.training.image_text.ImageTextModel.save`), a ``metrics.json`` and a README
    with the figures. No checkpoint is chosen on the test split: the last weights are saved.

    Args:
        out: Output folder (default: ``$ST_PLUGINS_HOME/clip-digits``, else the user cache dir).
        quick: The CI form: :data:`QUICK_EPOCHS` epochs, no shifted copies (bar :data:`QUICK_MIN_ACCURACY`).
        seed: Seeds the image tower's initial weights, the shifted copies, batching and dropout.
        epochs: Passes over the training pairs (default: :data:`EPOCHS`, quick :data:`QUICK_EPOCHS`).
        learning_rate: Peak AdamW learning rate (linear warm-up over 10% of the steps, then decay).
        shifts: Shifted copies of each training image added to the training set.
        text_model: The text tower (default: the packaged all-MiniLM-L6-v2).
        threads: torch CPU threads while the recipe runs (restored afterwards; ``None``: torch's setting).
            The model is tiny, so one thread is fastest: on a busy 2-core machine a forward pass of the
            image tower took 5 ms on 1 thread and 400 ms on 2.

    Returns:
        A :class:`DigitsResult`.
    """
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(out, quick, seed, epochs, learning_rate, shifts, text_model, show_progress_bar)
    finally:
        torch.set_num_threads(before)


def _train(out, quick: bool, seed: int, epochs: int | None, learning_rate: float, shifts: int, text_model,
           show_progress_bar: bool) -> DigitsResult:
    from st_plugins.training.losses import MultipleNegativesRankingLoss
    from st_plugins.training.trainer import Example, Trainer, TrainingArguments

    wall, cpu = time.perf_counter(), time.process_time()
    out_dir = Path(out) if out is not None else clip_digits_dir()
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    shifts = 0 if quick else shifts
    split = digits_split()
    train_images, train_labels = split["train"]
    if shifts:
        arrays, labels = _digits()
        order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))[:TRAIN_SIZE]
        train_images = train_images + digits_images(_shifted(arrays[order], shifts, seed))
        train_labels = np.concatenate([train_labels] + [train_labels] * shifts)
    examples = [Example((image, caption(int(d)))) for image, d in zip(train_images, train_labels)]
    model = build_digits_model(seed, text_model)
    args = TrainingArguments(epochs=epochs, batch_size=10, learning_rate=learning_rate, warmup_ratio=0.1,
                             weight_decay=0.01, seed=seed, no_duplicates=True, show_progress_bar=show_progress_bar)
    trained = Trainer(model, MultipleNegativesRankingLoss(model, scale=20.0), examples, args).train()
    scores = evaluate(model, *split["test"])
    result = DigitsResult(out_dir, scores["accuracy"], scores["recall@10"], scores["confusion"], quick, epochs,
                          trained.steps, len(examples), time.perf_counter() - wall, time.process_time() - cpu, seed,
                          {"learning_rate": learning_rate, "shifts": shifts, "batch_size": 10,
                           "text_model": str(text_model), "text_tower": "frozen"}, model)
    model.save(out_dir, model_card=_model_card(result))
    (out_dir / "metrics.json").write_text(_metrics_json(result.metrics()), encoding="utf-8")
    return result


def _metrics_json(data: dict[str, Any]) -> str:
    """``data`` as indented JSON with each confusion-matrix row on one line."""
    rows = ",\n    ".join(json.dumps(row) for row in data["confusion"])
    text = json.dumps({**data, "confusion": "@"}, indent=2)
    return text.replace('"@"', f"[\n    {rows}\n  ]") + "\n"


def _model_card(result: DigitsResult) -> str:
    kind = "quick (CI) run" if result.quick else "full recipe"
    return f"""---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags: [sentence-transformers, image-text, clip, st-plugins]
---
# clip-digits ({kind})

A small CLIP-style image-text model made offline by `st-plugins train-clip-digits{" --quick" if result.quick else ""}`
(st_plugins.training.clip_digits): a CLIPVisionModel trained from scratch on 1,200 of scikit-learn's
8x8 handwritten digits (RGB, upscaled to 16x16 by the image processor) and the frozen all-MiniLM-L6-v2
as text tower (its projection trained), MultipleNegativesRankingLoss on (image, caption) pairs such as
"a handwritten digit seven", batches without duplicate captions.

Held-out 597 test digits: zero-shot accuracy **{result.accuracy:.4f}**, text-to-image recall@10
**{result.recall_at_10:.4f}** (per caption query, the share of its 10 nearest test images that show
that digit, averaged). {result.epochs} epochs, {result.steps} steps, {result.wall_seconds:.0f} s wall.

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("path/to/this/folder")
images = model.encode([pil_image])                       # RGB PIL images
texts = model.encode(["a handwritten digit seven"])
model.similarity(images, texts)
```
"""
