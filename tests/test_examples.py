"""The examples run as a user would run them (fresh process, offline)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
