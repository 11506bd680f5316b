"""``st-plugins index PATH... --db DIR | --chroma-url URL [--ray [ADDRESS]]``: split .txt/.md files into
passages and add them to Chroma, in this process or on a Ray cluster; with an image-text model, add the
.png/.jpg files found beside them too (by path, as Chroma ``uris``)."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from st_plugins.errors import InputValueError

NAME = "index"
HELP = ("Index .txt/.md files (split into passages), and .png/.jpg images when the model has an image tower, into "
        "a Chroma database folder or server, here or on a Ray cluster; re-running adds nothing twice.")
DEFAULT_COLLECTION = "st_plugins"
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help=".txt/.md (and .png/.jpg) files or folders (searched recursively)")
    add_target_arguments(parser, "created if missing")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, metavar="NAME",
                        help=f"collection name (default: {DEFAULT_COLLECTION})")
    parser.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                        help=f"bi-encoder for a new collection (default: {DEFAULT_MODEL}); "
                             "an existing collection keeps the model it was made with")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N", help="passages per batch (default: 64)")
    parser.add_argument("--max-words", type=int, default=120, metavar="N",
                        help="about how many words per passage (default: 120)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="embed on a Ray cluster (pip install 'st-plugins[ray]'): its address (e.g. ray://HOST:10001 "
                             "or auto), or none for a local cluster on this machine")
    parser.add_argument("--actors", type=int, default=None, metavar="N",
                        help="with --ray: model actors (default: one per CPU of the cluster)")
    parser.add_argument("--gpus-per-actor", type=float, default=None, metavar="G",
                        help="with --ray: GPUs per actor (the model then runs on torch + cuda)")


def add_target_arguments(parser: argparse.ArgumentParser, made: str) -> None:
    """``--db DIR`` or ``--chroma-url URL`` (exactly one)."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--db", metavar="DIR", help=f"Chroma database folder ({made})")
    target.add_argument("--chroma-url", metavar="URL", help="a Chroma server instead, e.g. http://127.0.0.1:8000 (`chroma run`)")


def where(args: argparse.Namespace) -> str:
    return args.chroma_url or args.db


def run(args: argparse.Namespace) -> int:
    from st_plugins.chroma import open_collection
    from st_plugins.chroma._collection import is_multimodal
    from st_plugins.indexing import IMAGE_SUFFIXES, IndexResult, content_id, index_documents, iter_image_files, read_passages

    images = iter_image_files(args.paths)
    passages = read_passages([p for p in args.paths if Path(p) not in images], max_words=args.max_words)
    if not passages and not images:
        raise InputValueError(f"No .txt/.md text (nor {'/'.join(IMAGE_SUFFIXES)} image) found in {args.paths}; "
                              "pass files or folders holding some.")
    texts = [p.text for p in passages]
    ids = [content_id(p.text, p.source) for p in passages]
    metadatas = [{"source": p.source, "passage": p.index} for p in passages]
    if args.ray is not None:
        images = _skip(images, "--ray indexes texts only; index them without --ray", passages, args.paths)
        result = _run_on_ray(args, texts, ids, metadatas)
    else:
        if args.actors is not None or args.gpus_per_actor is not None:
            raise InputValueError("--actors and --gpus-per-actor need --ray; add --ray (a local cluster) or drop them.")
        collection = open_collection(args.db, args.collection, args.model, args.device, create=True, url=args.chroma_url)
        if not is_multimodal(collection):
            images = _skip(images, f"collection {args.collection!r} embeds texts only (its model has no image tower)",
                           passages, args.paths)
        parts = [index_documents(collection, texts, ids=ids, metadatas=metadatas, batch_size=args.batch_size,
                                 show_progress_bar=not args.quiet)] if passages else []
        parts += [_index_images(collection, images, args)] if images else []
        result = IndexResult(added=sum(r.added for r in parts), skipped=sum(r.skipped for r in parts),
                             total=parts[-1].total)
    files = len({p.source for p in passages})
    found = " and ".join([f"{len(passages)} passages from {files} files"] * bool(passages or not images)
                         + [f"{len(images)} images"] * bool(images))
    print(f"Indexed {found} into collection {args.collection!r} at {where(args)}: "
          f"{result.added} new, {result.skipped} already present ({result.total} in total).")
    return 0


def _skip(images: list[Path], why: str, passages: list, paths: list[str]) -> list[Path]:
    """Say on stderr, in one line, that the images are left out, and why (an error when nothing else is left)."""
    if not passages:
        raise InputValueError(f"No .txt/.md text found in {paths}, and its {len(images)} image files cannot be "
                              f"indexed: {why}.")
    if images:
        print(f"st-plugins index: skipped {len(images)} image files: {why}.", file=sys.stderr)
    return []


def _index_images(collection: Any, images: list[Path], args: argparse.Namespace) -> Any:
    """Add the image files by uri (absolute, so the stored uris open from anywhere), ids from path and content."""
    from st_plugins.indexing import content_id, index_images

    sources = [p.as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for p in images]
    ids = [content_id(hashlib.sha256(p.read_bytes()).hexdigest(), "image:" + source) for p, source in zip(images, sources)]
    return index_images(collection, [str(p.resolve()) for p in images], ids=ids,
                        metadatas=[{"source": source, "kind": "image"} for source in sources],
                        batch_size=args.batch_size, show_progress_bar=not args.quiet)


def _run_on_ray(args: argparse.Namespace, texts: list[str], ids: list[str], metadatas: list[dict]) -> Any:
    """Embed on the Ray cluster (model actors) and write from Ray tasks; the :class:`IndexResult`."""
    from st_plugins.errors import require

    require("ray.data", "ray")
    import ray

    from st_plugins.chroma import ChromaEmbeddingFunction
    from st_plugins.ray import index_documents as ray_index_documents

    address = ray_address(args.ray)
    ef = None if args.model is None else ChromaEmbeddingFunction(args.model)
    if args.chroma_url is not None:
        from st_plugins.chroma._collection import parse_url

        parse_url(args.chroma_url)  # before a cluster starts
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=not args.quiet)
    result = ray_index_documents(texts, args.collection, path=args.db, url=args.chroma_url, ids=ids,
                                 metadatas=metadatas, embedding_function=ef, device=args.device,
                                 batch_size=args.batch_size, concurrency=args.actors, num_gpus=args.gpus_per_actor,
                                 show_progress_bar=not args.quiet)
    return result


def ray_address(value: str) -> str:
    """The ``--ray`` value as ``ray.init``'s address: ``local`` (a new cluster for this run), ``auto``,
    ``ray://HOST:PORT`` or ``HOST:PORT``; a path (``--ray`` written before the paths) is refused.

    Example:
        >>> ray_address("local"), ray_address("10.0.0.5:6379"), ray_address("ray://head:10001")
        ('local', '10.0.0.5:6379', 'ray://head:10001')
    """
    import os
    import re

    if value in ("local", "auto") or re.fullmatch(r"(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", value):
        return value
    hint = " It is a path: put --ray after the paths, or write --ray=ADDRESS." if os.path.exists(value) else ""
    raise InputValueError(f"--ray takes a cluster address (auto, HOST:PORT or ray://HOST:PORT) or nothing for a local "
                          f"cluster; got {value!r}.{hint}")
