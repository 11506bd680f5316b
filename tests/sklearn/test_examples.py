"""examples/sklearn_*.py (in this process, on a Banking77 subset) and notebooks/sklearn.ipynb (in a kernel)."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--classes", "10", "--per-class", "20"]


def _main(name: str):
    return runpy.run_path(str(ROOT / "examples" / f"{name}.py"), run_name="example")["main"]


def test_sklearn_examples_classification_runs(banking77_dir, capsys):
    accuracy = _main("sklearn_classification")(["--data", str(banking77_dir), *QUICK])
    out = capsys.readouterr().out
    assert "200 training texts, 200 test texts, 10 intents" in out and "most confused intents" in out
    assert f"test accuracy: {accuracy:.4f}" in out and accuracy > 0.8  # 10 intents: chance is 0.1
    assert "no model weights" in out


def test_sklearn_examples_clustering_runs(banking77_dir, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    score = _main("sklearn_clustering")(["--data", str(banking77_dir), *QUICK, "--plot", str(tmp_path / "map.png")])
    out = capsys.readouterr().out
    assert "200 texts, 10 clusters" in out and f"V-measure vs the intents: {score:.4f}" in out
    assert score > 0.6 and (tmp_path / "map.png").stat().st_size > 10_000


def test_sklearn_examples_notebook_executes(banking77_dir, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ST_PLUGINS_DATA", str(banking77_dir.parent))
    notebook = nbformat.read(ROOT / "notebooks" / "sklearn.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    text = "\n".join(out.get("text", "") for out in outputs)
    pictures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(pictures) == 2, "a confusion summary and a 2-D map of the clusters"
    assert "480 training and 480 test texts" in text and "test accuracy: " in text
    assert "V-measure against the intents: " in text and "(480, 384)" in text
    assert "same predictions after unpickling: True" in text and "model loads in this kernel: [1]" in text
