"""The ``st-plugins`` command line: one sub-command per module in :mod:`st_plugins.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Errors raised on purpose (``StPluginsError``, ``OSError``, ``ValueError``) print as one message
with exit code 2; no tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from st_plugins.errors import StPluginsError

COMMANDS = ("train_reranker", "index", "search")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="st-plugins", description="Sentence-transformers-style models, offline.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMANDS:
        try:
            module = importlib.import_module(f"st_plugins.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"st_plugins.commands.{module_name}":
                continue  # command not built yet
            raise
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (StPluginsError, OSError, ValueError) as exc:
        print(f"st-plugins {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
