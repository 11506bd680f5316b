"""The examples run as a user would run them (fresh process, offline)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASTA_CORPUS

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, timeout: int = 600) -> str:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_examples_quickstart_prints_documented_numbers():
    out = run_example("quickstart.py")
    assert "(3, 384)" in out
    assert "tensor([[1.0000, 0.6660, 0.1046],\n        [0.6660, 1.0000, 0.1411],\n        [0.1046, 0.1411, 1.0000]])" in out
    pasta = out.split("Query: A man is eating pasta.")[1].splitlines()
    assert pasta[1].endswith("A man is eating food.") and pasta[2].endswith("A man is eating a piece of bread.")


def test_examples_cross_encoder_quickstart_ranks_food_and_bread_first():
    """The sentence-transformers CrossEncoder quickstart, only the import changed, on our offline STS reranker."""
    import numpy as np

    from st_plugins.training.named import STSB_RERANKER, locate_stsb_reranker

    if locate_stsb_reranker() is None:
        pytest.skip(f"trained STS reranker {STSB_RERANKER!r} not found; run `st-plugins train-reranker` (or --quick) first")
    out = run_example("cross_encoder_quickstart.py")
    lines = out.splitlines()
    assert lines[0] == "Query:  A man is eating pasta."
    ranked = [line.split("\t") for line in lines[1:10]]
    assert [text for _, text in ranked[:2]] == ["A man is eating food.", "A man is eating a piece of bread."]
    assert sorted(text for _, text in ranked) == sorted(PASTA_CORPUS)
    scores = [float(s) for s, _ in ranked]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    printed = np.array([float(x) for x in out.split("Scores: [", 1)[1].split("]", 1)[0].split()])
    indices = [int(x) for x in out.split("Indices: [", 1)[1].split("]", 1)[0].split()]
    assert indices[:2] == [0, 1] and indices == np.argsort(printed)[::-1].tolist()
    assert [f"{printed[PASTA_CORPUS.index(t)]:.2f}" for _, t in ranked] == [s for s, _ in ranked]


def test_examples_cross_encoder_quickstart_with_the_hub_name_says_what_works_offline(tmp_path):
    """As documented (`cross-encoder/stsb-distilroberta-base`), not cached, no network: one clear error."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), ST_PLUGINS_HOME=str(tmp_path / "home"),
               HF_HOME=str(tmp_path / "hf"))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "cross_encoder_quickstart.py"),
                           "cross-encoder/stsb-distilroberta-base"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1 and done.stdout == ""
    error = done.stderr.split("st_plugins.errors.ModelNotFoundError: ", 1)[1]
    assert done.stderr.count("Traceback") == 1 and "During handling" not in done.stderr  # one error, nothing chained
    assert error.startswith("Could not find cross-encoder 'cross-encoder/stsb-distilroberta-base': it is not a local "
                            "folder, and 'cross-encoder/stsb-distilroberta-base' is not in the Hugging Face hub cache")
    assert "'st-plugins/stsb-reranker': not made yet, make it with `st-plugins train-reranker`" in error
    assert "'st-plugins/qa-reranker': not made yet, make it with `st-plugins train-reranker --task qa`" in error
