"""notebooks/chroma.ipynb and examples/chroma_quickstart.py run end to end (real model, real Chroma)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("chromadb")

REPO = Path(__file__).resolve().parents[2]


def _execute(name: str, monkeypatch, timeout: int) -> tuple[object, str]:
    """Run notebooks/``name`` in a kernel that imports this checkout; the notebook and its printed text."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}}).execute()
    text = "\n".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []))
    return notebook, text


def test_notebooks_chroma_executes(monkeypatch):
    _, text = _execute("chroma.ipynb", monkeypatch, 600)
    assert "first run: 7 added; second run: 0 added, 7 already there" in text
    assert "same results: True" in text and "model loads: [1]" in text
    assert "`precision` must be 'float32' for Chroma" in text
    assert "`input[1]` must be a str; got int (3)" in text


def test_examples_chroma_quickstart_runs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    script = [sys.executable, str(REPO / "examples" / "chroma_quickstart.py"), str(tmp_path / "db")]
    first = subprocess.run(script, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "space: cosine" in first.stdout and "added 9, already present 0, total 9" in first.stdout
    meal = first.stdout.split("Someone is having a meal.")[1].splitlines()[1]
    assert meal.endswith("A man is eating food.")
    assert "same results" in first.stdout
    second = subprocess.run(script, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0 and "added 0, already present 9, total 9" in second.stdout


def test_notebooks_images_executes(monkeypatch):
    """notebooks/images.ipynb: the digits model (trained quick when $ST_PLUGINS_HOME has none) in a Chroma
    multimodal collection; its text hits equal a brute-force cosine ranking, an image finds itself, and the
    accuracy it prints is the recipe's own evaluation of the same model."""
    pytest.importorskip("torch")
    notebook, text = _execute("images.ipynb", monkeypatch, 900)
    assert "stored: 597" in text and "hits agree with brute force: True" in text
    assert "first hit is itself: True" in text
    images = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
              if "image/png" in out.get("data", {})]
    assert len(images) == 2  # the hit grid and the confusion matrix

    from st_plugins import SentenceTransformer
    from st_plugins.training.clip_digits import clip_digits_dir, digits_split, evaluate

    test_images, labels = digits_split()["test"]
    accuracy = evaluate(SentenceTransformer(str(clip_digits_dir())), test_images, labels)["accuracy"]
    assert f"zero-shot accuracy: {accuracy:.4f}" in text
