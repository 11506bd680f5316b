"""The trained models' names: data in st_plugins.training.named, found by the core through an entry point."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from st_plugins.core import resolve
from st_plugins.training import named

ROOT = Path(__file__).resolve().parents[2]


def fake_reranker(home: Path) -> Path:
    """An ``stsb-reranker`` folder under ``home`` that :func:`named.locate` accepts (a config.json)."""
    folder = home / "stsb-reranker"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_named_models_are_the_st_plugins_models_entry_point():
    [entry] = [e for e in entry_points(group=resolve.ENTRY_POINT_GROUP) if e.name == "st_plugins"]
    assert entry.load() is named.named_models
    assert sorted(named.named_models()) == sorted(named.NAMED_MODELS) == [named.QA_RERANKER, named.STSB_RERANKER]
    for name, model in named.NAMED_MODELS.items():
        locator = named.named_models()[name]
        assert (locator.kind, locator.about, locator.make) == (model.kind, model.about, model.make) and model.kind == "cross"


def test_named_reranker_folder_is_under_st_plugins_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path))
    assert named.stsb_reranker_dir() == tmp_path / "stsb-reranker" and named.locate_stsb_reranker() is None
    folder = fake_reranker(tmp_path)
    assert named.locate_stsb_reranker() == folder
    assert resolve.resolve_model_path(named.STSB_RERANKER) == folder


def test_named_qa_reranker_folder_is_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path))
    fake_reranker(tmp_path)  # the STS one is there; the QA one is not
    assert named.qa_reranker_dir() == tmp_path / "qa-reranker" and named.locate_qa_reranker() is None
    (tmp_path / "qa-reranker").mkdir()
    (tmp_path / "qa-reranker" / "config.json").write_text("{}")
    assert resolve.resolve_model_path(named.QA_RERANKER) == tmp_path / "qa-reranker"
    assert "WikiQA" in named.NAMED_MODELS[named.QA_RERANKER].about and "research use only" in named.NAMED_MODELS[named.QA_RERANKER].about


def test_named_core_names_no_product():
    core = ROOT / "st_plugins" / "core"
    mentions = [str(p.relative_to(ROOT)) for p in core.rglob("*.py") if "stsb" in p.read_text(encoding="utf-8")]
    assert mentions == [] and not (core / "home.py").exists()
