"""``st-plugins index PATH... --db DIR``: split .txt/.md files into passages and add them to Chroma."""

from __future__ import annotations

import argparse

from st_plugins.errors import InputValueError

NAME = "index"
HELP = "Index .txt/.md files (split into passages) into a persistent Chroma database; re-running adds nothing twice."
DEFAULT_COLLECTION = "st_plugins"
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help=".txt/.md files or folders (searched recursively)")
    parser.add_argument("--db", required=True, metavar="DIR", help="Chroma database folder (created if missing)")
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


def run(args: argparse.Namespace) -> int:
    from st_plugins.chroma import open_collection
    from st_plugins.indexing import content_id, index_documents, read_passages

    passages = read_passages(args.paths, max_words=args.max_words)
    if not passages:
        raise InputValueError(f"No .txt/.md text found in {args.paths}; pass files or folders holding some.")
    collection = open_collection(args.db, args.collection, args.model, args.device, create=True)
    result = index_documents(
        collection,
        [p.text for p in passages],
        ids=[content_id(p.text, p.source) for p in passages],
        metadatas=[{"source": p.source, "passage": p.index} for p in passages],
        batch_size=args.batch_size,
        show_progress_bar=not args.quiet,
    )
    files = len({p.source for p in passages})
    print(f"Indexed {len(passages)} passages from {files} files into collection {args.collection!r} at {args.db}: "
          f"{result.added} new, {result.skipped} already present ({collection.count()} in total).")
    return 0
