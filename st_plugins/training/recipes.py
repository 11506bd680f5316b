"""Recipes on the STS benchmark: an STS cross-encoder (reranker) and a CoSENT bi-encoder fine-tune.

Both start from the packaged all-MiniLM-L6-v2, train with :class:`~st_plugins.training.Trainer`,
keep the checkpoint with the best dev Spearman and report the test Spearman. From a shell::

    python -m st_plugins.training.recipes reranker --data ../shared/data/stsbenchmark --out /tmp/rr
    python -m st_plugins.training.recipes cosent --data ../shared/data/stsbenchmark --out /tmp/bi
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from st_plugins.data import StsPair, data_dir, read_sts
from st_plugins.core.home import stsb_reranker_dir

__all__ = ["RecipeResult", "sts_examples", "pair_token_lengths", "read_sts_folder", "train_stsb_reranker", "finetune_bi_encoder_cosent"]

BASE_MODEL = "all-MiniLM-L6-v2"
QUICK_TRAIN_PAIRS = 1500


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

    Raises:
        FileNotFoundError: The train or dev file is missing (the message shows the expected layout).
    """
    root = Path(folder) if folder is not None else data_dir() / "stsbenchmark"
    splits = {}
    for split in ("train", "dev", "test"):
        path = root / f"sts-{split}.csv"
        if path.is_file():
            splits[split] = read_sts(path)
        elif split != "test":
            raise FileNotFoundError(
                f"`data` folder {str(root)!r} has no sts-{split}.csv; pass the STS benchmark folder "
                "(sts-train.csv, sts-dev.csv, optional sts-test.csv), e.g. ../shared/data/stsbenchmark."
            )
    return splits


def _subset(pairs: list[StsPair], n: int, seed: int) -> list[StsPair]:
    return pairs if len(pairs) <= n else random.Random(seed).sample(pairs, n)


def _pairs_and_scores(pairs: list[StsPair]) -> tuple[list[list[str]], list[float]]:
    return [[p.sentence1, p.sentence2] for p in pairs], [p.score for p in pairs]


def _cross_encoder_from_bi_encoder(base_model: str, seed: int, max_length: int, device: str | None):
    """The base model's transformer with a fresh (seeded) 1-label head, as a CrossEncoder."""
    import torch

    from st_plugins.core.cross_encoder import CrossEncoder

    torch.manual_seed(seed)
    return CrossEncoder(base_model, num_labels=1, max_length=max_length, device=device)


def pair_token_lengths(tokenizer, examples: list) -> Callable:
    """``length_fn`` for :class:`~st_plugins.training.Trainer`: each pair's token count (tight length groups)."""
    ids = tokenizer([e.texts[0] for e in examples], [e.texts[1] for e in examples])["input_ids"]
    table = {e.texts: len(row) for e, row in zip(examples, ids)}
    return lambda example: table[example.texts]


def train_stsb_reranker(data: str | os.PathLike | None = None, out: str | os.PathLike | None = None, *,
                        base_model: str = BASE_MODEL, epochs: int = 3, batch_size: int = 32, learning_rate: float = 1e-4,
                        warmup_ratio: float = 0.1, max_length: int = 128, seed: int = 12, quick: bool = False,
                        device: str | None = "cpu", show_progress_bar: bool = True) -> RecipeResult:
    """Fine-tune ``base_model``'s transformer plus a fresh 1-label head into an STS cross-encoder.

    Binary cross-entropy on ``score / 5`` with both pair orders, AdamW with linear warm-up and decay,
    evaluation on dev after each epoch, the best epoch kept and saved to ``out``.

    Args:
        data: STS benchmark folder (default: ``st_plugins.data.data_dir() / "stsbenchmark"``).
        out: Output folder (default: ``$ST_PLUGINS_HOME/stsb-reranker`` or the user cache dir).
        quick: A short run for CI: 1 epoch on a subset of the training pairs.

    Returns:
        A :class:`RecipeResult` (``test_spearman`` is ``None`` without ``sts-test.csv``).
    """
    from st_plugins.training.evaluators import CrossEncoderCorrelationEvaluator
    from st_plugins.training.losses import BinaryCrossEntropyLoss
    from st_plugins.training.trainer import Trainer, TrainingArguments

    wall, cpu = time.perf_counter(), time.process_time()
    splits = read_sts_folder(data)
    out_dir = Path(out) if out is not None else stsb_reranker_dir()
    train = _subset(splits["train"], QUICK_TRAIN_PAIRS, seed) if quick else splits["train"]
    model = _cross_encoder_from_bi_encoder(base_model, seed, max_length, device)
    args = TrainingArguments(epochs=1 if quick else epochs, batch_size=batch_size, learning_rate=learning_rate,
                             warmup_ratio=warmup_ratio, seed=seed, group_by_length=True,
                             show_progress_bar=show_progress_bar)
    dev = CrossEncoderCorrelationEvaluator(*_pairs_and_scores(splits["dev"]), name="sts-dev")
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

    Args:
        data: STS benchmark folder (default: ``st_plugins.data.data_dir() / "stsbenchmark"``).
        out: Output folder (default: ``$ST_PLUGINS_HOME/stsb-cosent-minilm`` or the user cache dir).
        quick: A short run: 1 epoch on a subset of the training pairs.
    """
    from st_plugins.core.bi_encoder import SentenceTransformer
    from st_plugins.training.evaluators import EmbeddingSimilarityEvaluator
    from st_plugins.training.losses import CoSENTLoss
    from st_plugins.training.trainer import Trainer, TrainingArguments

    wall, cpu = time.perf_counter(), time.process_time()
    splits = read_sts_folder(data)
    out_dir = Path(out) if out is not None else stsb_reranker_dir().with_name("stsb-cosent-minilm")
    train = _subset(splits["train"], QUICK_TRAIN_PAIRS, seed) if quick else splits["train"]
    model = SentenceTransformer(base_model, device=device)

    def evaluator(split: str) -> EmbeddingSimilarityEvaluator:
        pairs = splits[split]
        return EmbeddingSimilarityEvaluator([p.sentence1 for p in pairs], [p.sentence2 for p in pairs],
                                            [p.score for p in pairs], main_similarity="cosine", name=f"sts-{split}")

    baseline = evaluator("test")(model)["sts-test_spearman_cosine"] if "test" in splits else None
    args = TrainingArguments(epochs=1 if quick else epochs, batch_size=batch_size, learning_rate=learning_rate,
                             warmup_ratio=warmup_ratio, seed=seed, show_progress_bar=show_progress_bar)
    result = Trainer(model, CoSENTLoss(model), sts_examples(train), args, evaluator("dev")).train(out_dir)
    test = evaluator("test")(model)["sts-test_spearman_cosine"] if "test" in splits else None
    return RecipeResult(out_dir, result.best_score, test, baseline, time.perf_counter() - wall,
                        time.process_time() - cpu, result.steps)


def main(argv: list[str] | None = None) -> int:
    """``python -m st_plugins.training.recipes {reranker,cosent} --data DIR --out DIR [--quick]``."""
    parser = argparse.ArgumentParser(prog="python -m st_plugins.training.recipes", description=__doc__.splitlines()[0])
    parser.add_argument("recipe", choices=["reranker", "cosent"])
    parser.add_argument("--data", default=None, help="STS benchmark folder (default: the shared data folder)")
    parser.add_argument("--out", default=None, help="output folder (default: under ST_PLUGINS_HOME or the user cache)")
    parser.add_argument("--base-model", default=BASE_MODEL, help="starting model (default: all-MiniLM-L6-v2)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's (3 reranker, 4 cosent)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="1 epoch on a subset (smoke run)")
    args = parser.parse_args(argv)
    recipe = train_stsb_reranker if args.recipe == "reranker" else finetune_bi_encoder_cosent
    extra = {k: v for k, v in (("epochs", args.epochs), ("learning_rate", args.lr), ("seed", args.seed)) if v is not None}
    res = recipe(args.data, args.out, base_model=args.base_model, quick=args.quick, **extra)
    before = f" (before: {res.baseline_test_spearman:.4f})" if res.baseline_test_spearman is not None else ""
    print(f"saved to {res.path}\ndev Spearman {res.dev_spearman:.4f}; test Spearman "
          f"{res.test_spearman if res.test_spearman is None else round(res.test_spearman, 4)}{before}; "
          f"{res.steps} steps, {res.wall_seconds:.0f} s wall, {res.cpu_seconds:.0f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
