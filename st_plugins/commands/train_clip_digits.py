"""``st-plugins train-clip-digits``: train a small CLIP-style image-text model on scikit-learn's digits, offline.

A CLIPVisionModel trained from scratch plus the frozen all-MiniLM-L6-v2 as text tower, saved in
sentence-transformers' layout (see :mod:`st_plugins.training.clip_digits`). The command prints and
saves (``metrics.json``, README) the held-out zero-shot accuracy and text-to-image recall@10, and
fails (exit code 1) below the bar: 0.90 accuracy for the full recipe, 0.80 for ``--quick``.
"""

from __future__ import annotations

import argparse
import sys

from st_plugins.training import clip_digits as recipe  # light: the heavy imports happen inside its functions

NAME = "train-clip-digits"
HELP = ("Train a small CLIP-style image-text model (image tower from scratch, frozen all-MiniLM-L6-v2 text tower) on "
        "scikit-learn's 8x8 digits, offline, and save it in sentence-transformers format.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "--out", dest="out", default=None, metavar="DIR",
                        help="output folder (default: $ST_PLUGINS_HOME/clip-digits, else ~/.cache/st_plugins/clip-digits)")
    parser.add_argument("--quick", action="store_true",
                        help=f"short run for CI: {recipe.QUICK_EPOCHS} epochs, no shifted copies; fails unless the "
                             f"zero-shot test accuracy is >= {recipe.QUICK_MIN_ACCURACY} (the full recipe: "
                             f">= {recipe.MIN_ACCURACY})")
    parser.add_argument("--seed", type=int, default=0, help="seeds the image tower, shifts, batches, dropout (default: 0); "
                                                            "the train/test split is fixed")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"passes over the training pairs (default: {recipe.EPOCHS}, --quick {recipe.QUICK_EPOCHS})")
    parser.add_argument("--lr", type=float, default=recipe.LEARNING_RATE,
                        help=f"peak learning rate (default: {recipe.LEARNING_RATE:g})")
    parser.add_argument("--shifts", type=int, default=recipe.SHIFTS,
                        help=f"one-pixel-shifted copies of each training image (default: {recipe.SHIFTS}; --quick: 0)")
    parser.add_argument("--threads", type=int, default=recipe.THREADS,
                        help=f"torch CPU threads (default: {recipe.THREADS}: the model is tiny, one thread is fastest)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from st_plugins.errors import require

    for module in ("torch", "transformers"):
        require(module, "torch")
    require("sklearn", "sklearn")
    result = recipe.train_clip_digits(args.out, quick=args.quick, seed=args.seed, epochs=args.epochs,
                                      learning_rate=args.lr, shifts=args.shifts, threads=args.threads,
                                      show_progress_bar=not args.no_progress)
    print(f"digits test (597 images): zero-shot accuracy {result.accuracy:.4f}, text-to-image recall@10 "
          f"{result.recall_at_10:.4f} ({result.epochs} epochs, {result.steps} steps on {result.train_examples} pairs, "
          f"{result.wall_seconds:.0f} s wall, {result.cpu_seconds:.0f} s CPU)")
    print(f"Saved the model to {result.path} (metrics in metrics.json)")
    print(f"Load it with sentence_transformers.SentenceTransformer({str(result.path)!r})")
    bar = recipe.QUICK_MIN_ACCURACY if args.quick else recipe.MIN_ACCURACY
    if result.accuracy < bar:
        print(f"st-plugins {NAME}: {'quick ' if args.quick else ''}run reached zero-shot accuracy "
              f"{result.accuracy:.4f} < {bar}", file=sys.stderr)
        return 1
    return 0
