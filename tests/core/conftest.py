"""Fixtures for the core tests (runtime and backends): a private artifact cache, STS sentences, fp32 references."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def tmp_home(tmp_path, monkeypatch):
    """A fresh ``$ST_PLUGINS_HOME`` (empty artifact cache) for one test."""
    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="session")
def sts_sentences(sts_test):
    """The STS test sentences, each once, in file order."""
    return list(dict.fromkeys([p.sentence1 for p in sts_test] + [p.sentence2 for p in sts_test]))


def shared_model(backend: str):
    """The process-wide all-MiniLM-L6-v2 on CPU with ``backend`` (loaded once per backend)."""
    from st_plugins.core.cache import get_model

    return get_model("bi", "all-MiniLM-L6-v2", device="cpu", backend=backend)


@pytest.fixture(scope="session")
def fp32_reference(minilm_path, sts_sentences):
    """torch fp32 embeddings of the STS test sentences (the reference every path is measured against)."""
    return shared_model("torch").encode(sts_sentences, batch_size=64)


def sts_spearman(sts_test, sentences, embeddings) -> float:
    """Spearman of cosine similarity against the gold STS scores."""
    from scipy.stats import spearmanr

    row = {s: i for i, s in enumerate(sentences)}
    a = embeddings[[row[p.sentence1] for p in sts_test]]
    b = embeddings[[row[p.sentence2] for p in sts_test]]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(spearmanr(cos, [p.score for p in sts_test]).correlation)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
