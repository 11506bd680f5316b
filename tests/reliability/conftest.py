"""Reliability tests: hypothesis profiles and the tiny model pairs (ours and sentence-transformers' on one folder).

Profiles (pick with ``HYPOTHESIS_PROFILE``): ``ci`` (default) is derandomized (a fixed seed) with few examples
per property, so the fuzz files stay well under 90 s on 2 cores; ``thorough`` runs ten times as many, randomly.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
           "print_blob": True}
settings.register_profile("ci", max_examples=25, derandomize=True, **_COMMON)
settings.register_profile("thorough", max_examples=250, derandomize=False, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def tiny_bi(make_st_folder):
    """``(ours, oracle)``: st_plugins and sentence-transformers on one tiny folder with query/document prompts."""
    from sentence_transformers import SentenceTransformer as Oracle

    from st_plugins import SentenceTransformer

    folder = make_st_folder(prompts={"query": "query: ", "document": "passage: "})
    return SentenceTransformer(str(folder), device="cpu"), Oracle(str(folder), device="cpu")


@pytest.fixture(scope="session")
def tiny_cross(make_cross_folder):
    """``(ours, oracle)``: st_plugins and sentence-transformers CrossEncoder on one tiny 1-label folder."""
    from sentence_transformers import CrossEncoder as Oracle

    from st_plugins import CrossEncoder

    folder = make_cross_folder("bert", 1)
    return CrossEncoder(str(folder), device="cpu"), Oracle(str(folder), device="cpu")
