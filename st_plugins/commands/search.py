"""``st-plugins search "QUERY" --db DIR | --chroma-url URL``: print the top passages (and images, in a collection
whose model has an image tower) with scores and source file."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

from st_plugins.commands.index import DEFAULT_COLLECTION, add_target_arguments, where
from st_plugins.core.validation import check_positive_int, check_text
from st_plugins.errors import ModelNotFoundError
from st_plugins.training.named import NAMED_MODELS, QA_RERANKER

NAME = "search"
HELP = ("Search a Chroma database made by `st-plugins index`; --rerank re-scores the candidates with the "
        "question-answer cross-encoder.")
#: A question should find the passage that answers it: the QA reranker, not the STS (similarity) one.
RERANKER = QA_RERANKER
MAKE_RERANKER = NAMED_MODELS[QA_RERANKER].make + " --data WIKIQA_DIR"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", metavar="QUERY", help="what to look for, in plain words")
    add_target_arguments(parser, "made by `st-plugins index`")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, metavar="NAME",
                        help=f"collection name (default: {DEFAULT_COLLECTION})")
    parser.add_argument("-k", "--top-k", dest="k", type=int, default=5, metavar="K", help="passages to print (default: 5)")
    parser.add_argument("--rerank", action="store_true",
                        help=f"re-score the candidates with the cross-encoder {RERANKER!r} (make it with: {MAKE_RERANKER})")
    parser.add_argument("--candidates", type=int, default=20, metavar="N",
                        help="with --rerank: how many passages the bi-encoder fetches first (default: 20)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available, else cpu)")


def run(args: argparse.Namespace) -> int:
    from st_plugins.chroma import open_collection

    check_text(args.query, "QUERY")  # a command line that is not UTF-8 reaches Python with lone surrogates
    k = check_positive_int(args.k, "-k")
    fetch = max(k, check_positive_int(args.candidates, "--candidates")) if args.rerank else k
    reranker = load_reranker(args.device) if args.rerank else None
    collection = open_collection(args.db, args.collection, device=args.device, url=args.chroma_url)
    if collection.count() == 0:
        target = f"--db {args.db}" if args.db else f"--chroma-url {args.chroma_url}"
        print(f"Collection {args.collection!r} in {where(args)} is empty; add files with: st-plugins index PATH... {target}")
        return 1
    found = collection.query(query_texts=[args.query], n_results=min(fetch, collection.count()),
                             include=["documents", "metadatas", "distances", "uris"])
    space = (collection.configuration_json.get("hnsw") or {}).get("space", "l2")
    hits = [{"text": doc, "uri": uri, "meta": meta or {}, "score": _similarity(dist, space)}
            for doc, uri, meta, dist in zip(found["documents"][0], found["uris"][0] or [None] * len(found["ids"][0]),
                                            found["metadatas"][0], found["distances"][0])]
    label = "similarity" if space in ("cosine", "ip") else "-distance"
    if reranker is not None:
        images = [hit for hit in hits if hit["text"] is None]
        if images:
            print(f"st-plugins search: --rerank scores texts only; left out {len(images)} image hits.", file=sys.stderr)
        hits = [hit for hit in hits if hit["text"] is not None]
        scores = reranker.predict([(args.query, hit["text"]) for hit in hits])
        for hit, score in zip(hits, scores):
            hit["score"] = float(score)
        hits.sort(key=lambda hit: hit["score"], reverse=True)
        label = "rerank"
    for rank, hit in enumerate(hits[:k], start=1):
        if hit["text"] is None:  # an image, added by uri
            print(f"{rank}. {label} {hit['score']:.4f}  {hit['meta'].get('source', '?')} (image)")
            print(f"   {hit['uri']}")
            continue
        found_in = f"{hit['meta'].get('source', '?')} (passage {hit['meta'].get('passage', '?')})"
        print(f"{rank}. {label} {hit['score']:.4f}  {found_in}")
        body = " ".join(hit["text"].split())
        print(textwrap.indent(textwrap.fill(textwrap.shorten(body, 400, placeholder=" ..."), 96), "   "))
    return 0


def _similarity(distance: float, space: str) -> float:
    """Chroma distances back to scores: cosine/ip store ``1 - similarity``; l2 stores squared distance."""
    return 1.0 - distance if space in ("cosine", "ip") else -distance


def load_reranker(device: str | None = None) -> Any:
    """The trained question-answer cross-encoder, or :class:`ModelNotFoundError` saying how to make it.

    A missing dependency stays a :class:`~st_plugins.errors.MissingDependencyError` naming the extra.
    """
    from st_plugins.core.cache import get_model

    try:
        return get_model("cross", RERANKER, device=device, local_files_only=True)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(
            f"--rerank needs the question-answer reranker {RERANKER!r}, which is not on this machine. "
            f"Make it once with: {MAKE_RERANKER}  (it is saved in the user cache dir, or under $ST_PLUGINS_HOME), "
            "then search again; or drop --rerank."
        ) from exc
