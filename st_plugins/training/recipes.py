"""Recipes on the STS benchmark: an STS cross-encoder (reranker) and a CoSENT bi-encoder fine-tune.

Both start from the packaged all-MiniLM-L6-v2, train with :class:`~st_plugins.training.Trainer`,
keep the checkpoint with the best dev Spearman and report the test Spearman. From a shell::

    st-plugins train-reranker --data DATA/stsbenchmark --out /tmp/rr
    st-plugins cosent --data DATA/stsbenchmark --out /tmp/bi

Without ``data`` they read ``$ST_PLUGINS_DATA/stsbenchmark`` (:func:`st_plugins.data.data_dir`).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from st_plugins.core.runtime.store import home_dir
from st_plugins.data import StsPair, read_splits, read_sts
from st_plugins.errors import InputValueError
from st_plugins.training.named import COSENT_FOLDER, stsb_reranker_dir

__all__ = ["RecipeResult", "sts_examples", "pair_token_lengths", "read_sts_folder", "train_stsb_reranker", "finetune_bi_encoder_cosent",
           "BiEncoderTeacher", "silver_pairs"]

BASE_MODEL = "all-MiniLM-L6-v2"
QUICK_TRAIN_PAIRS, QUICK_TEACHER_WEIGHT = 1500, 0.5
# The reranker recipe's defaults (STS test Spearman and time in the README and train_stsb_reranker).
EPOCHS, TEACHER, TEACHER_EPOCHS, TEACHER_LR, TEACHER_WEIGHT, SILVER = 3, "cosent", 2, 2e-5, 0.5, 2000


@dataclass
class RecipeResult:
    """Where the model went and how it scored (Spearman x 1, not x 100); times in seconds."""

    path: Path
    dev_spearman: float | None
    test_spearman: float | None
    baseline_test_spearman: float | None
    wall_seconds: float
    cpu_seconds: float
    steps: int


def sts_examples(pairs: list[StsPair], both_orders: bool = False, scale: float = 5.0) -> list:
    """Training examples with label ``score / scale``; ``both_orders`` adds each pair swapped.

    Example:
        >>> [e.label for e in sts_examples([StsPair("a", "b", 4.0)], both_orders=True)]
        [0.8, 0.8]
    """
    from st_plugins.training.trainer import Example

    out = [Example((p.sentence1, p.sentence2), p.score / scale) for p in pairs]
    if both_orders:
        out += [Example((p.sentence2, p.sentence1), p.score / scale) for p in pairs]
    return out


def read_sts_folder(folder: str | os.PathLike | None) -> dict[str, list[StsPair]]:
    """Read ``sts-train.csv``, ``sts-dev.csv`` and (if present) ``sts-test.csv`` from ``folder``.

    Args:
        folder: The STS benchmark folder (default: ``$ST_PLUGINS_DATA/stsbenchmark``).

    Raises:
        DataNotFoundError: No folder given and ``ST_PLUGINS_DATA`` unset, or the train or dev file is
            missing (the message shows the expected layout).
    """
    return read_splits(folder, "stsbenchmark", "sts-{split}.csv", "STS benchmark", read_sts)


def _subset(pairs: list[StsPair], n: int, seed: int) -> list[StsPair]:
    return pairs if len(pairs) <= n else random.Random(seed).sample(pairs, n)


def _pairs_and_scores(pairs: list[StsPair]) -> tuple[list[list[str]], list[float]]:
    return [[p.sentence1, p.sentence2] for p in pairs], [p.score for p in pairs]


def _embedding_evaluator(pairs: list[StsPair], split: str):
    """Cosine Spearman of a bi-encoder on ``pairs`` (an :class:`EmbeddingSimilarityEvaluator` named ``sts-<split>``)."""
    from st_plugins.training.evaluators import EmbeddingSimilarityEvaluator

    return EmbeddingSimilarityEvaluator([p.sentence1 for p in pairs], [p.sentence2 for p in pairs], [p.score for p in pairs],
                                        main_similarity="cosine", name=f"sts-{split}")


def _distilled(train: list[StsPair], teacher_model, teacher_weight: float, silver: int, seed: int,
               device: str | None) -> list[StsPair]:
    """``train`` with labels blended with the teacher's, plus ``silver`` teacher-labelled pairs."""
    if not teacher_weight and not silver:
        return train
    teacher = BiEncoderTeacher(teacher_model, train, device)
    blended = [StsPair(p.sentence1, p.sentence2, (1 - teacher_weight) * p.score + teacher_weight * 5.0 * t)
               for p, t in zip(train, teacher.gold_labels)]
    sentences = [s for p in train for s in (p.sentence1, p.sentence2)]
    return blended + (silver_pairs(teacher, sentences, silver, seed) if silver else [])


def _cosent_model(base_model: str, train: list[StsPair], dev: list[StsPair], epochs: int, seed: int,
                  device: str | None, show_progress_bar: bool, learning_rate: float = 2e-5, batch_size: int = 32,
                  warmup_ratio: float = 0.1):
    """``base_model`` fine-tuned with CoSENT on ``train`` (best epoch on ``dev`` kept) and its :class:`TrainResult`."""
    from st_plugins.core.bi_encoder import SentenceTransformer
    from st_plugins.training.losses import CoSENTLoss
    from st_plugins.training.trainer import Trainer, TrainingArguments

    model = SentenceTransformer(base_model, device=device)
    evaluator = _embedding_evaluator(dev, "dev")
    args = TrainingArguments(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, warmup_ratio=warmup_ratio,
                             seed=seed, group_by_length=True, show_progress_bar=show_progress_bar)
    return model, Trainer(model, CoSENTLoss(model), sts_examples(train), args, evaluator).train()


def _cross_encoder_from_bi_encoder(base_model: str, seed: int, max_length: int, device: str | None):
    """The base model's transformer with a fresh (seeded) 1-label head, as a CrossEncoder."""
    import torch

    from st_plugins.core.cross_encoder import CrossEncoder

    torch.manual_seed(seed)
    return CrossEncoder(base_model, num_labels=1, max_length=max_length, device=device)


class BiEncoderTeacher:
    """A bi-encoder's cosine, mapped linearly onto ``score / 5`` of the gold pairs, clipped to [0, 1].

    Blending its scores into the reranker's labels (distillation) and labelling extra pairs with it
    passes on what the bi-encoder knows: it generalises across STS genres better than a
    cross-encoder fit to the STS labels alone (see :func:`train_stsb_reranker`).

    Args:
        model: A bi-encoder name or path, or a loaded :class:`~st_plugins.SentenceTransformer`.
        gold: The pairs whose scores fix the mapping.
    """

    def __init__(self, model, gold: list[StsPair], device: str | None = "cpu") -> None:
        import numpy as np

        from st_plugins.core.bi_encoder import SentenceTransformer

        self.model = SentenceTransformer(model, device=device) if isinstance(model, (str, os.PathLike)) else model
        cos = self.cosine([(p.sentence1, p.sentence2) for p in gold])
        self.slope, self.intercept = np.polyfit(cos, np.array([p.score / 5.0 for p in gold]), 1)
        self.gold_labels = self.calibrate(cos)  # the teacher's label of each gold pair

    def embed(self, texts: list[str]):
        return self.model.encode(texts, normalize_embeddings=True, batch_size=128)

    def cosine(self, pairs: list[tuple[str, str]]):
        a, b = self.embed([p[0] for p in pairs]), self.embed([p[1] for p in pairs])
        return (a * b).sum(axis=1).astype("float64")

    def calibrate(self, cos) -> list[float]:
        """Cosines mapped onto ``score / 5`` and clipped to [0, 1]."""
        import numpy as np

        return np.clip(self.slope * cos + self.intercept, 0.0, 1.0).tolist()

    def __call__(self, pairs: list[tuple[str, str]]) -> list[float]:
        return self.calibrate(self.cosine(pairs))


def silver_pairs(teacher: BiEncoderTeacher, sentences: list[str], n: int, seed: int, neighbours: int = 20) -> list[StsPair]:
    """``n`` new pairs of training sentences, each with one of its ``neighbours`` nearest (teacher's view), teacher-labelled.

    Near neighbours span the whole similarity range, unlike random pairs (nearly all unrelated).
    """
    import numpy as np

    texts = sorted(set(sentences))
    neighbours = min(neighbours, len(texts) - 1)
    if n <= 0 or neighbours < 1:
        return []
    rng = np.random.default_rng(seed)
    emb = teacher.embed(texts)
    firsts = rng.choice(len(texts), size=min(n, len(texts)), replace=False)
    sims = emb[firsts] @ emb.T
    sims[np.arange(len(firsts)), firsts] = -np.inf
    ranked = np.argsort(-sims, axis=1)[:, :neighbours]
    seconds = ranked[np.arange(len(firsts)), rng.integers(0, neighbours, size=len(firsts))]
    labels = teacher.calibrate((emb[firsts] * emb[seconds]).sum(axis=1).astype("float64"))
    return [StsPair(texts[i], texts[j], 5.0 * t) for i, j, t in zip(firsts, seconds, labels)]


def pair_token_lengths(tokenizer, examples: list) -> Callable:
    """``length_fn`` for :class:`~st_plugins.training.Trainer`: each pair's token count (tight length groups)."""
    ids = tokenizer([e.texts[0] for e in examples], [e.texts[1] for e in examples])["input_ids"]
    table = {e.texts: len(row) for e, row in zip(examples, ids)}
    return lambda example: table[example.texts]


def train_stsb_reranker(data: str | os.PathLike | None = None, out: str | os.PathLike | None = None, *,
                        base_model: str = BASE_MODEL, epochs: int = EPOCHS, batch_size: int = 32, learning_rate: float = 1e-4,
                        warmup_ratio: float = 0.1, max_length: int = 128, seed: int = 12, quick: bool = False,
                        teacher: str = TEACHER, teacher_epochs: int = TEACHER_EPOCHS, teacher_learning_rate: float = TEACHER_LR,
                        teacher_weight: float = TEACHER_WEIGHT, silver: int = SILVER, device: str | None = "cpu", show_progress_bar: bool = True) -> RecipeResult:
    """Fine-tune ``base_model``'s transformer plus a fresh 1-label head into an STS cross-encoder.

    Binary cross-entropy with both pair orders, AdamW with linear warm-up and decay, evaluation on
    dev after each epoch, the best epoch kept and saved to ``out``. The labels are distilled: each
    is ``(1 - teacher_weight) * score / 5 + teacher_weight * teacher``, where the teacher is a
    bi-encoder's cosine mapped onto the STS scale (:class:`BiEncoderTeacher`; by default the base
    model fine-tuned with CoSENT on the same pairs), and ``silver`` extra
    pairs of training sentences (near neighbours, :func:`silver_pairs`) carry the teacher's label
    alone. The STS labels alone overfit the training genres (test Spearman 0.822 against dev 0.863);
    the bi-encoder, trained on far more data, generalises, and rank-averaging the two gives 0.855.

    Args:
        data: STS benchmark folder (default: ``$ST_PLUGINS_DATA/stsbenchmark``).
        out: Output folder (default: ``$ST_PLUGINS_HOME/stsb-reranker`` or the user cache dir).
        quick: A short run for CI: 1 epoch on 1,500 of the training pairs, the base model as teacher
            (weight 0.5), no silver pairs.
        teacher: ``"cosent"`` (the base bi-encoder fine-tuned with CoSENT on the training pairs for
            ``teacher_epochs``, in memory) or a bi-encoder name or path used as it is.
        teacher_learning_rate: Peak learning rate of the ``"cosent"`` teacher.
        teacher_weight: Share of the teacher in the labels of the STS pairs, in [0, 1] (0: STS scores only).
        silver: Number of extra teacher-labelled pairs (0: none).

    Returns:
        A :class:`RecipeResult` (``test_spearman`` is ``None`` without ``sts-test.csv``).

    Raises:
        InputValueError: ``teacher_weight`` outside [0, 1] or ``silver`` negative.
        DataNotFoundError: The STS files are not where ``data`` points (see :func:`read_sts_folder`).
    """
    from st_plugins.training.evaluators import CrossEncoderCorrelationEvaluator
    from st_plugins.training.losses import BinaryCrossEntropyLoss
    from st_plugins.training.trainer import Trainer, TrainingArguments

    if not 0.0 <= teacher_weight <= 1.0:
        raise InputValueError(f"`teacher_weight` must be in [0, 1]; got {teacher_weight!r}.")
    if not isinstance(silver, int) or isinstance(silver, bool) or silver < 0:
        raise InputValueError(f"`silver` must be a non-negative int (extra pairs); got {silver!r}.")
    wall, cpu = time.perf_counter(), time.process_time()
    splits = read_sts_folder(data)
    out_dir = Path(out) if out is not None else stsb_reranker_dir()
    train = _subset(splits["train"], QUICK_TRAIN_PAIRS, seed) if quick else splits["train"]
    model = _cross_encoder_from_bi_encoder(base_model, seed, max_length, device)
    args = TrainingArguments(epochs=1 if quick else epochs, batch_size=batch_size, learning_rate=learning_rate,
                             warmup_ratio=warmup_ratio, seed=seed, group_by_length=True,
                             show_progress_bar=show_progress_bar)
    dev = CrossEncoderCorrelationEvaluator(*_pairs_and_scores(splits["dev"]), name="sts-dev")
    if quick:
        teacher_model, teacher_weight, silver = base_model, QUICK_TEACHER_WEIGHT, 0
    elif teacher != "cosent":
        teacher_model = teacher
    else:  # the base bi-encoder fine-tuned with CoSENT on the same pairs, kept in memory
        teacher_model, _ = _cosent_model(base_model, train, splits["dev"], teacher_epochs, seed, device, show_progress_bar,
                                         teacher_learning_rate)
    train = _distilled(train, teacher_model, teacher_weight, silver, seed, device)
    del teacher_model
    examples = sts_examples(train, both_orders=True)
    trainer = Trainer(model, BinaryCrossEntropyLoss(model), examples, args, dev, pair_token_lengths(model.tokenizer, examples))
    result = trainer.train(out_dir)
    test = None
    if "test" in splits:
        test = CrossEncoderCorrelationEvaluator(*_pairs_and_scores(splits["test"]), name="sts-test")(model)["sts-test_spearman"]
    return RecipeResult(out_dir, result.best_score, test, None, time.perf_counter() - wall,
                        time.process_time() - cpu, result.steps)


def finetune_bi_encoder_cosent(data: str | os.PathLike | None = None, out: str | os.PathLike | None = None, *,
                               base_model: str = BASE_MODEL, epochs: int = 4, batch_size: int = 32,
                               learning_rate: float = 2e-5, warmup_ratio: float = 0.1, seed: int = 0, quick: bool = False,
                               device: str | None = "cpu", show_progress_bar: bool = True) -> RecipeResult:
    """Fine-tune the bi-encoder ``base_model`` with :class:`~st_plugins.training.CoSENTLoss` on sts-train.

    The dev split selects the best epoch; ``baseline_test_spearman`` is the untouched model's figure.
    Batches group pairs of similar length (less padding: about twice as fast on CPU).

    Args:
        data: STS benchmark folder (default: ``$ST_PLUGINS_DATA/stsbenchmark``).
        out: Output folder (default: ``$ST_PLUGINS_HOME/stsb-cosent-minilm`` or the user cache dir).
        quick: A short run: 1 epoch on a subset of the training pairs.

    Raises:
        DataNotFoundError: The STS files are not where ``data`` points (see :func:`read_sts_folder`).
    """
    from st_plugins.core.bi_encoder import SentenceTransformer

    wall, cpu = time.perf_counter(), time.process_time()
    splits = read_sts_folder(data)
    out_dir = Path(out) if out is not None else home_dir() / COSENT_FOLDER
    train = _subset(splits["train"], QUICK_TRAIN_PAIRS, seed) if quick else splits["train"]
    test = _embedding_evaluator(splits["test"], "test") if "test" in splits else None
    baseline = test(SentenceTransformer(base_model, device=device))["sts-test_spearman_cosine"] if test else None
    model, result = _cosent_model(base_model, train, splits["dev"], 1 if quick else epochs, seed, device, show_progress_bar,
                                  learning_rate, batch_size, warmup_ratio)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(os.fspath(out_dir))
    return RecipeResult(out_dir, result.best_score, test(model)["sts-test_spearman_cosine"] if test else None, baseline,
                        time.perf_counter() - wall, time.process_time() - cpu, result.steps)
