"""The sentence-transformers quickstart, with only the import changed, gives the documented numbers."""

from __future__ import annotations

import torch

from st_plugins import SentenceTransformer


def test_quickstart_shape_and_similarity_matrix():
    model = SentenceTransformer("all-MiniLM-L6-v2")
    embeddings = model.encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    assert embeddings.shape == (3, 384)
    similarities = model.similarity(embeddings, embeddings)
    assert isinstance(similarities, torch.Tensor)
    printed = [[f"{v:.4f}" for v in row] for row in similarities.tolist()]
    assert printed == [["1.0000", "0.6660", "0.1046"], ["0.6660", "1.0000", "0.1411"], ["0.1046", "0.1411", "1.0000"]]


def test_quickstart_name_with_org_resolves_to_packaged_model(minilm_path):
    from st_plugins.core.resolve import resolve_model_path

    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == minilm_path
    assert resolve_model_path("all-MiniLM-L6-v2") == minilm_path


def test_sts_benchmark_cosine_spearman(model, sts_test):
    from scipy.stats import spearmanr

    a = model.encode([p.sentence1 for p in sts_test], batch_size=64)
    b = model.encode([p.sentence2 for p in sts_test], batch_size=64)
    cosine = model.similarity_pairwise(a, b).numpy()
    rho = spearmanr(cosine, [p.score for p in sts_test]).statistic
    assert abs(rho - 0.8203) <= 0.0005, rho
