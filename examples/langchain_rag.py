"""Retrieval with reranking feeding a prompt, on LangChain, with st_plugins models.

    python examples/langchain_rag.py                     # three queries over a small corpus
    python examples/langchain_rag.py --evaluate 300      # + MRR@10 on the first 300 STS-test pairs
    python examples/langchain_rag.py --evaluate          # + MRR@10 on all of STS-test (slower)
    python examples/langchain_rag.py --store memory --reranker path/to/cross-encoder

The chain: LangChainEmbeddings -> a vector store (langchain-chroma's Chroma in cosine space, or
InMemoryVectorStore) -> the 20 nearest documents -> CrossEncoderReranker keeps the best 3 -> a prompt
-> a chat model. The chat model is LangChain's own fake, ``ParrotFakeChatModel``, which answers with the
prompt it receives: the script runs offline without an LLM (put a real chat model in its place).

The reranker is ``st-plugins/stsb-reranker`` (made by ``st-plugins train-reranker``). When it is missing,
the bi-encoder's cosine stands in as the scorer: the chain runs, but the order cannot improve.
"""

from __future__ import annotations

import argparse
import os
import uuid

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
from langchain_classic.retrievers import ContextualCompressionRetriever  # noqa: E402
from langchain_core.cross_encoders import BaseCrossEncoder  # noqa: E402
from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.runnables import RunnablePassthrough  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

from st_plugins.langchain import CrossEncoderReranker, LangChainCrossEncoder, LangChainEmbeddings  # noqa: E402

CORPUS = [
    "A man is playing a guitar on stage.", "A woman is slicing an onion in the kitchen.",
    "A dog is running through a field.", "Two men are playing chess in the park.",
    "A child is riding a red bicycle.", "The cat is sleeping on the sofa.",
    "A chef is cooking pasta in a restaurant.", "People are dancing at a wedding party.",
    "A plane is taking off from the airport.", "A boy kicks a football into the goal.",
    "An old man is reading a newspaper.", "A horse jumps over a wooden fence.",
]
# Statements, as in STS (the STS reranker scores similarity of meaning, not question answering).
QUERIES = ["A person is playing music.", "An animal is running outside.", "Someone is preparing food."]
PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer from the context only."),
    ("human", "Context:\n{context}\n\nQuery: {query}"),
])


class CosineScorer(BaseCrossEncoder):
    """Stand-in reranker: the bi-encoder's cosine between query and document (no gain over retrieval)."""

    def __init__(self, embeddings: LangChainEmbeddings):
        self.embeddings = embeddings.model_copy(update={"normalize_embeddings": True})

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        queries = {q: self.embeddings.embed_query(q) for q in dict.fromkeys(q for q, _ in text_pairs)}
        docs = self.embeddings.embed_documents([d for _, d in text_pairs])
        return [float(np.dot(queries[q], v)) for (q, _), v in zip(text_pairs, docs)]


def make_store(kind: str, texts: list[str], embeddings: LangChainEmbeddings):
    """A vector store holding ``texts``: Chroma (cosine space, in memory) or InMemoryVectorStore."""
    if kind == "memory":
        return InMemoryVectorStore.from_texts(texts, embeddings)
    import chromadb
    from langchain_chroma import Chroma

    client = chromadb.EphemeralClient(settings=chromadb.config.Settings(anonymized_telemetry=False))
    return Chroma.from_texts(texts, embeddings, client=client, collection_name=f"rag-{uuid.uuid4().hex[:8]}",
                             collection_configuration={"hnsw": {"space": "cosine"}})


def make_scorer(name: str, embeddings: LangChainEmbeddings) -> BaseCrossEncoder:
    """The cross-encoder ``name`` (through the shared cache), or the cosine stand-in when it is missing."""
    try:
        return LangChainCrossEncoder(model=name, device=embeddings.device)
    except OSError:  # ModelNotFoundError
        print(f"Reranker {name!r} not found: using the bi-encoder's cosine as a stand-in scorer "
              "(run `st-plugins train-reranker` to make the real one).")
        return CosineScorer(embeddings)


def rag_chain(retriever, reranker: CrossEncoderReranker):
    """query -> retrieve -> rerank -> prompt -> (fake) chat model -> text."""
    reranked = {"query": RunnablePassthrough(), "documents": retriever} | reranker
    context = reranked | (lambda docs: "\n".join(f"- {d.page_content}" for d in docs))
    return {"context": context, "query": RunnablePassthrough()} | PROMPT | ParrotFakeChatModel() | StrOutputParser()


def mrr_at_10(results: list[list], relevant: list[str]) -> float:
    """Mean reciprocal rank of the relevant text among the first 10 documents (0 when absent)."""
    ranks = [next((1.0 / r for r, d in enumerate(docs[:10], 1) if d.page_content == text), 0.0)
             for docs, text in zip(results, relevant)]
    return float(np.mean(ranks))


def evaluate(n_pairs: int, kind: str, embeddings: LangChainEmbeddings, scorer: BaseCrossEncoder) -> dict[str, float]:
    """MRR@10 on STS-test: index the second sentences, query with the first ones of pairs scored >= 4."""
    from st_plugins.data import data_dir, read_sts

    pairs = read_sts(data_dir() / "stsbenchmark" / "sts-test.csv")[: n_pairs or None]
    corpus = list(dict.fromkeys(p.sentence2 for p in pairs))
    queries = [p for p in pairs if p.score >= 4]
    retriever = make_store(kind, corpus, embeddings).as_retriever(search_kwargs={"k": 20})
    reranker = CrossEncoderReranker(model=scorer, top_n=10)
    reranking = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=retriever)
    questions, relevant = [q.sentence1 for q in queries], [q.sentence2 for q in queries]
    scores = {"retrieval": mrr_at_10(retriever.batch(questions), relevant),
              "retrieval + reranking": mrr_at_10(reranking.batch(questions), relevant)}
    print(f"\nSTS-test, {len(corpus)} documents, {len(queries)} queries (pairs scored >= 4), {kind} store:")
    for name, value in scores.items():
        print(f"  MRR@10 {name:<22} {value:.3f}")
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["chroma", "memory"], default="chroma")
    parser.add_argument("--reranker", default="st-plugins/stsb-reranker")
    parser.add_argument("--evaluate", type=int, nargs="?", const=0, metavar="N_PAIRS",
                        help="also report MRR@10 on the first N STS-test pairs (all when N is omitted)")
    args = parser.parse_args(argv)
    embeddings = LangChainEmbeddings(model="all-MiniLM-L6-v2", device="cpu")
    retriever = make_store(args.store, CORPUS, embeddings).as_retriever(search_kwargs={"k": 20})
    scorer = make_scorer(args.reranker, embeddings)
    chain = rag_chain(retriever, CrossEncoderReranker(model=scorer, top_n=3))
    for query in QUERIES:
        print(f"\n=== {query}\n(fake chat model: the answer is the prompt it received)\n{chain.invoke(query)}")
    if args.evaluate is not None:
        evaluate(args.evaluate, args.store, embeddings, scorer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
