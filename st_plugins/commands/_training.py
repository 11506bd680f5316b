"""What the training commands (``train-reranker``, ``cosent``) share: their common flags and report."""

from __future__ import annotations

import argparse

from st_plugins.training import recipes  # light: the heavy imports happen inside its functions


STS_DATA = ("STS benchmark folder with sts-train.csv, sts-dev.csv[, sts-test.csv] "
            "(default: $ST_PLUGINS_DATA/stsbenchmark)")


def add_arguments(parser: argparse.ArgumentParser, *, out: str, base_model: str, epochs: int | str, lr: float | str,
                  seed: int, quick: str, data: str = STS_DATA) -> None:
    """The flags the recipes take; ``out``, ``base_model``, ``quick`` and ``data`` are help texts, the rest defaults.

    ``epochs`` or ``lr`` given as a string is the help's description of a default that depends on
    other flags: the flag then defaults to ``None`` and the command fills it in.
    """
    parser.add_argument("--data", default=None, metavar="DIR", help=data)
    parser.add_argument("--out", default=None, metavar="DIR", help=out)
    parser.add_argument("--base-model", default=recipes.BASE_MODEL, metavar="NAME_OR_PATH", help=base_model)
    parser.add_argument("--epochs", type=int, default=None if isinstance(epochs, str) else epochs,
                        help=f"passes over the training pairs (default: {epochs})")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per step (default: 32)")
    parser.add_argument("--lr", type=float, default=None if isinstance(lr, str) else lr,
                        help=f"peak learning rate (default: {lr if isinstance(lr, str) else format(lr, 'g')})")
    parser.add_argument("--seed", type=int, default=seed, help=f"random seed (default: {seed})")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def common_settings(args: argparse.Namespace) -> dict:
    """The recipe keyword arguments behind the common flags; sets torch's threads when ``--threads`` is given.

    Raises:
        MissingDependencyError: torch or transformers is not installed (training needs the torch extra).
    """
    from st_plugins.errors import require

    for module in ("torch", "transformers"):
        require(module, "torch")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    return {"base_model": args.base_model, "epochs": args.epochs, "batch_size": args.batch_size,
            "learning_rate": args.lr, "seed": args.seed, "quick": args.quick, "device": args.device,
            "show_progress_bar": not args.no_progress}


def report(result: recipes.RecipeResult) -> str:
    """``STS dev Spearman ..., test Spearman ... (steps, wall, CPU)`` for a finished recipe."""
    test = "n/a (no sts-test.csv)" if result.test_spearman is None else f"{result.test_spearman:.4f}"
    before = "" if result.baseline_test_spearman is None else f" (before: {result.baseline_test_spearman:.4f})"
    return (f"STS dev Spearman {result.dev_spearman:.4f}, test Spearman {test}{before} "
            f"({result.steps} steps, {result.wall_seconds / 60:.1f} min wall, {result.cpu_seconds / 60:.1f} min CPU)")


def qa_report(result) -> str:
    """``WikiQA dev MAP ..., test MAP ... MRR ... (steps, wall, CPU)`` for a finished QA recipe."""
    test = ("n/a (no WikiQA-test.tsv)" if not result.test else
            f"{result.test['map']:.4f}, MRR {result.test['mrr']:.4f} ({int(result.test['questions'])} questions)")
    return (f"WikiQA dev MAP {result.dev_map:.4f}, test MAP {test} on {result.train_examples} training examples "
            f"({result.steps} steps, {result.wall_seconds / 60:.1f} min wall, {result.cpu_seconds / 60:.1f} min CPU)")
