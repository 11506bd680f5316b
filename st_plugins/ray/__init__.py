"""Ray Data adapter: embedding and reranking with ``map_batches`` actor pools, and a Chroma ``Datasink``.

Needs Ray Data (``pip install "st-plugins[ray]"``). The pieces:

- :class:`EmbedBatch` / :class:`RerankBatch`: callable classes for ``Dataset.map_batches``; each actor
  holds one model, loaded once through the process-wide cache (the torch-free runtime on the CPU,
  torch on a GPU); :func:`embed_dataset` / :func:`rerank_dataset` add them to a dataset with sensible
  actor counts and resources.
- :class:`ChromaDatasink`: idempotent writes (content-hash ids, upserts) into a ``chroma run``
  server or an embedded database folder.
- :func:`index_documents`: both together, as ``st-plugins index --ray`` runs them.

docs/ray.md says how these map onto many machines and what a failure does.
"""

from __future__ import annotations

from st_plugins.errors import require

require("ray.data", "ray")

from st_plugins.ray._batches import EmbedBatch, RerankBatch  # noqa: E402
from st_plugins.ray._pipeline import embed_dataset, index_documents, rerank_dataset  # noqa: E402
from st_plugins.ray._sink import ChromaDatasink  # noqa: E402

__all__ = ["EmbedBatch", "RerankBatch", "ChromaDatasink", "embed_dataset", "rerank_dataset", "index_documents"]
