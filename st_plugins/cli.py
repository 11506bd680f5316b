"""The ``st-plugins`` command line: one sub-command per module in :mod:`st_plugins.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Errors raised on purpose (``StPluginsError``) and the operating system's (``OSError``: a file that
cannot be read or written) print as one message with exit code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from st_plugins.errors import StPluginsError

COMMANDS = ("train_reranker", "train_clip_digits", "cosent", "index", "search", "build_graph")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="st-plugins", description="Sentence-transformers-style models, offline.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMANDS:
        module = importlib.import_module(f"st_plugins.commands.{module_name}")
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
    except (StPluginsError, OSError) as exc:
        print(f"st-plugins {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
