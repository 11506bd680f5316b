"""``st-plugins cosent``: fine-tune the all-MiniLM-L6-v2 bi-encoder with CoSENT on the STS benchmark."""

from __future__ import annotations

import argparse

from st_plugins.commands import _training
from st_plugins.training import recipes  # light: the heavy imports happen inside its functions

NAME = "cosent"
HELP = ("Fine-tune the packaged all-MiniLM-L6-v2 bi-encoder with CoSENT on sts-train.csv "
        "(best epoch chosen on sts-dev.csv), report STS test Spearman before and after, and save it.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _training.add_arguments(
        parser, out="output folder (default: $ST_PLUGINS_HOME/stsb-cosent-minilm, else the user cache dir)",
        base_model="bi-encoder to fine-tune (default: all-MiniLM-L6-v2)", epochs=4, lr=2e-5, seed=0,
        quick="smoke run: 1 epoch on 1,500 of the training pairs")
    parser.add_argument("--warmup-ratio", type=float, default=0.1,
                        help="share of the steps spent warming the learning rate up (default: 0.1)")


def run(args: argparse.Namespace) -> int:
    result = recipes.finetune_bi_encoder_cosent(args.data, args.out, **_training.common_settings(args),
                                                warmup_ratio=args.warmup_ratio)
    print(_training.report(result))
    print(f"Saved the bi-encoder to {result.path}")
    print(f"Load it with SentenceTransformer({str(result.path)!r})")
    return 0
