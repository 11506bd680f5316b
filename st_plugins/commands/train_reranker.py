"""``st-plugins train-reranker``: fine-tune all-MiniLM-L6-v2 into an STS cross-encoder (reranker)."""

from __future__ import annotations

import argparse
import sys

from st_plugins.commands import _training
from st_plugins.training import recipes  # light: the heavy imports happen inside its functions
from st_plugins.training.named import STSB_RERANKER, stsb_reranker_dir

NAME = "train-reranker"
HELP = ("Fine-tune the packaged all-MiniLM-L6-v2 into an STS cross-encoder on sts-train.csv "
        "(best epoch chosen on sts-dev.csv) and save it.")

QUICK_MIN_SPEARMAN = 0.75  # --quick (1 epoch on 1,500 pairs, base model as teacher) must reach this STS test Spearman


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _training.add_arguments(
        parser, out=f"output folder (default: $ST_PLUGINS_HOME/stsb-reranker, else the user cache dir, "
                    f"e.g. ~/.cache/st_plugins/stsb-reranker; that one loads as {STSB_RERANKER!r})",
        base_model="model whose transformer is fine-tuned, with a fresh 1-label head (default: all-MiniLM-L6-v2)",
        epochs=recipes.EPOCHS, lr=1e-4, seed=12,
        quick=f"short run for CI (1 epoch on 1,500 pairs, the base model as teacher, no silver pairs); "
              f"fails unless STS test Spearman >= {QUICK_MIN_SPEARMAN}")
    parser.add_argument("--max-length", type=int, default=128, help="token limit per pair (default: 128)")
    parser.add_argument("--teacher", default=recipes.TEACHER, metavar="cosent|NAME_OR_PATH",
                        help="bi-encoder whose scores are distilled into the labels: 'cosent' fine-tunes the base model "
                             "with CoSENT on the training pairs first (default), or give a bi-encoder")
    parser.add_argument("--teacher-epochs", type=int, default=recipes.TEACHER_EPOCHS,
                        help=f"CoSENT epochs of the 'cosent' teacher (default: {recipes.TEACHER_EPOCHS})")
    parser.add_argument("--teacher-lr", type=float, default=recipes.TEACHER_LR,
                        help=f"peak learning rate of the 'cosent' teacher (default: {recipes.TEACHER_LR:g})")
    parser.add_argument("--teacher-weight", type=float, default=recipes.TEACHER_WEIGHT,
                        help="share of the teacher's score in each label; 0 trains on the STS scores alone "
                             f"(default: {recipes.TEACHER_WEIGHT})")
    parser.add_argument("--silver", type=int, default=recipes.SILVER,
                        help=f"extra pairs of training sentences labelled by the teacher (default: {recipes.SILVER})")


def run(args: argparse.Namespace) -> int:
    result = recipes.train_stsb_reranker(
        args.data, args.out, **_training.common_settings(args), max_length=args.max_length, teacher=args.teacher,
        teacher_epochs=args.teacher_epochs, teacher_learning_rate=args.teacher_lr, teacher_weight=args.teacher_weight,
        silver=args.silver,
    )
    print(_training.report(result))
    print(f"Saved the reranker to {result.path}")
    name = f" or CrossEncoder({STSB_RERANKER!r})" if result.path.resolve() == stsb_reranker_dir().resolve() else ""
    print(f"Load it with CrossEncoder({str(result.path)!r}){name}")
    if args.quick and result.test_spearman is not None and result.test_spearman < QUICK_MIN_SPEARMAN:
        print(f"st-plugins {NAME}: quick run reached test Spearman {result.test_spearman:.4f} "
              f"< {QUICK_MIN_SPEARMAN}", file=sys.stderr)
        return 1
    return 0
