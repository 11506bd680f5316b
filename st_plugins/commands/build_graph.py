"""``st-plugins build-graph MODEL``: build a model's inference graph into the disk cache ahead of time.

The first use of a model on a machine builds its graph anyway (from its safetensors in about a second, or
exported with torch in a child process running this command); run it yourself to pay that once, e.g. while
building a container image.
"""

from __future__ import annotations

import argparse
import time

NAME = "build-graph"
HELP = "Build a model's torch-free inference graph (ONNX) into the disk cache, once per machine."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model name or folder (e.g. all-MiniLM-L6-v2)")
    parser.add_argument("--kind", choices=("bi", "cross", "mm"), default="bi",
                        help="bi-encoder (default), cross-encoder (reranker) or mm (an image-text model's two towers)")
    parser.add_argument("--backend", choices=("onnx", "int8"), default="onnx",
                        help="onnx: exact fp32 (the default path); int8: quantized, bi-encoders only")
    parser.add_argument("--allow-pickle", action="store_true", help="accept a pytorch_model.bin checkpoint (unsafe)")
    parser.add_argument("--builder", choices=("auto", "safetensors", "export"), default=None,
                        help="safetensors: write the graph from the weights (no torch); export: with torch; "
                             "auto (default, or $ST_PLUGINS_GRAPH_BUILDER): safetensors when it covers the model")
    parser.add_argument("--quiet", action="store_true", help="print only the graph folder")


def run(args: argparse.Namespace) -> int:
    from st_plugins.core.backends.build import build_for_folder, builder_choice
    from st_plugins.core.resolve import resolve_model_path
    from st_plugins.errors import InputValueError

    if args.kind == "cross" and args.backend == "int8":
        raise InputValueError("`--backend int8` is for bi-encoders only; use --backend onnx for a cross-encoder.")
    root = resolve_model_path(args.model)
    start = time.perf_counter()
    if args.kind == "mm":
        from st_plugins.core.multimodal import publish_towers

        if args.backend != "onnx" or args.builder == "safetensors":
            raise InputValueError("An image-text model's graphs are exported with torch in fp32: use --backend onnx "
                                  "and --builder auto or export.")
        folder = publish_towers(root, allow_pickle=args.allow_pickle)
        if not args.quiet:
            print(f"image and text graphs of {root} ready in {time.perf_counter() - start:.1f} s:")
        print(folder)
        return 0
    folder = build_for_folder(root, args.kind, args.backend, allow_pickle=args.allow_pickle,
                              builder=args.builder or builder_choice())
    if not args.quiet:
        print(f"{args.backend} graph of {root} ready in {time.perf_counter() - start:.1f} s:")
    print(folder)
    return 0
