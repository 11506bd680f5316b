"""``st-plugins train-reranker``: fine-tune all-MiniLM-L6-v2 into an STS cross-encoder (reranker)."""

from __future__ import annotations

import argparse
import sys

from st_plugins.training import recipes  # light: the heavy imports happen inside its functions

NAME = "train-reranker"
HELP = ("Fine-tune the packaged all-MiniLM-L6-v2 into an STS cross-encoder on sts-train.csv "
        "(best epoch chosen on sts-dev.csv) and save it.")

QUICK_MIN_SPEARMAN = 0.75  # --quick (1 epoch on 1,500 pairs, base model as teacher) must reach this STS test Spearman


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="STS benchmark folder with sts-train.csv, sts-dev.csv[, sts-test.csv] "
                             "(default: $ST_PLUGINS_DATA/stsbenchmark or ../shared/data/stsbenchmark)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: $ST_PLUGINS_HOME/stsb-reranker, else the user cache dir, "
                             "e.g. ~/.cache/st_plugins/stsb-reranker; that one loads as 'st-plugins/stsb-reranker')")
    parser.add_argument("--base-model", default="all-MiniLM-L6-v2", metavar="NAME_OR_PATH",
                        help="model whose transformer is fine-tuned, with a fresh 1-label head (default: all-MiniLM-L6-v2)")
    parser.add_argument("--epochs", type=int, default=recipes.EPOCHS,
                        help=f"passes over the training and silver pairs, both orders (default: {recipes.EPOCHS})")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per step (default: 32)")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default: 1e-4)")
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
    parser.add_argument("--seed", type=int, default=12, help="random seed (default: 12)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true",
                        help=f"short run for CI (1 epoch on 1,500 pairs, the base model as teacher, no silver pairs); fails unless STS test Spearman >= {QUICK_MIN_SPEARMAN}")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from st_plugins.core.home import STSB_RERANKER, stsb_reranker_dir

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    result = recipes.train_stsb_reranker(
        args.data, args.out, base_model=args.base_model, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        max_length=args.max_length, seed=args.seed, quick=args.quick, teacher=args.teacher,
        teacher_epochs=args.teacher_epochs, teacher_learning_rate=args.teacher_lr, teacher_weight=args.teacher_weight,
        silver=args.silver, device=args.device,
        show_progress_bar=not args.no_progress,
    )
    test = "n/a (no sts-test.csv)" if result.test_spearman is None else f"{result.test_spearman:.4f}"
    print(f"STS dev Spearman {result.dev_spearman:.4f}, test Spearman {test} "
          f"({result.steps} steps, {result.wall_seconds / 60:.1f} min wall, {result.cpu_seconds / 60:.1f} min CPU)")
    print(f"Saved the reranker to {result.path}")
    name = f" or CrossEncoder({STSB_RERANKER!r})" if result.path.resolve() == stsb_reranker_dir().resolve() else ""
    print(f"Load it with CrossEncoder({str(result.path)!r}){name}")
    if args.quick and result.test_spearman is not None and result.test_spearman < QUICK_MIN_SPEARMAN:
        print(f"st-plugins {NAME}: quick run reached test Spearman {result.test_spearman:.4f} "
              f"< {QUICK_MIN_SPEARMAN}", file=sys.stderr)
        return 1
    return 0
