"""A real local Ray cluster (``ray.init(num_cpus=2)``, loopback only), started once for the Ray tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_cluster():
    """The cluster's address (other processes connect to it with ``--ray ADDRESS``); shut down at the end."""
    ray = pytest.importorskip("ray")
    # Workers import the fault-injecting classes of tests/ray/faults.py, as a user's job imports its own code.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=400 * 2**20)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def sentences(sts_test) -> list[str]:
    """1,000 distinct STS-benchmark test sentences, in file order."""
    return list(dict.fromkeys(s for p in sts_test for s in (p.sentence1, p.sentence2)))[:1000]
