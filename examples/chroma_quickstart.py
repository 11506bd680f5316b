"""Chroma quickstart: embed with st_plugins, store in Chroma, search, reopen without passing the function.

Run:  python examples/chroma_quickstart.py [DB_DIR]     (default: a fresh temporary folder)
Works offline: the model is the packaged all-MiniLM-L6-v2.
"""

from __future__ import annotations

import sys
import tempfile

import chromadb

from st_plugins.chroma import ChromaEmbeddingFunction
from st_plugins.indexing import index_documents

DOCUMENTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "A cheetah is running behind its prey.",
]
QUERIES = ["Someone is having a meal.", "An animal chases another animal.", "Somebody plays music."]


def main(db_dir: str) -> None:
    client = chromadb.PersistentClient(path=db_dir)
    collection = client.get_or_create_collection(
        "quickstart", embedding_function=ChromaEmbeddingFunction("all-MiniLM-L6-v2"))
    print(f"space: {collection.configuration_json['hnsw']['space']}")

    # Content-hash ids: running the example twice adds nothing the second time.
    result = index_documents(collection, DOCUMENTS, show_progress_bar=False)
    print(f"added {result.added}, already present {result.skipped}, total {collection.count()}")

    found = collection.query(query_texts=QUERIES, n_results=2)
    for query, docs, distances in zip(QUERIES, found["documents"], found["distances"]):
        print(f"\n{query}")
        for doc, distance in zip(docs, distances):
            print(f"  {1 - distance:.3f}  {doc}")  # cosine space: similarity = 1 - distance

    # A new client (as in a new process): no embedding function passed, Chroma rebuilds ours
    # from the settings stored with the collection (st_plugins.chroma must be imported).
    reopened = chromadb.PersistentClient(path=db_dir).get_collection("quickstart")
    again = reopened.query(query_texts=QUERIES, n_results=2)
    assert again["ids"] == found["ids"]
    print(f"\nreopened with {reopened.configuration_json['embedding_function']['name']!r}: same results")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="st_plugins_chroma_"))
