"""``st-plugins train-reranker``: arguments, output folder, printed location, the registered name, --quick bar."""

from __future__ import annotations

import pytest

from st_plugins import cli
from st_plugins.commands import train_reranker


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["train-reranker", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_reranker_is_registered_with_the_cli():
    parser = cli.build_parser()
    args = parser.parse_args(["train-reranker", "--data", "d", "--out", "o", "--quick"])
    assert (args.data, args.out, args.quick, args.task, args.base_model) == ("d", "o", True, "sts", "all-MiniLM-L6-v2")
    assert (args.epochs, args.lr, args.teacher_weight) == (None, None, None)  # filled in per task
    assert (args.teacher, args.teacher_epochs, args.teacher_lr, args.silver) == ("cosent", 2, 2e-5, 2000)
    assert train_reranker.TASKS == {"sts": ("st-plugins/stsb-reranker", 1e-4, 3), "qa": ("st-plugins/qa-reranker", 5e-5, 2)}
    qa_args = parser.parse_args(["train-reranker", "--task", "qa"])
    assert (qa_args.hard_negatives, qa_args.listwise, qa_args.other_pages) == (3, 7, 0)
    assert train_reranker.NAME == "train-reranker"


def test_train_reranker_default_out_is_st_plugins_home_and_short_name_loads(tiny_sts_dir, tiny_bi_dir, tmp_path,
                                                                            monkeypatch, capsys):
    from st_plugins.core.cross_encoder import CrossEncoder
    from st_plugins.training import named as registry

    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path / "home"))
    assert registry.locate_stsb_reranker() is None
    code, out, _ = _run(capsys, "--data", str(tiny_sts_dir), "--base-model", str(tiny_bi_dir), "--epochs", "1",
                        "--lr", "1e-3", "--no-progress")
    folder = tmp_path / "home" / "stsb-reranker"
    assert code == 0
    assert f"Saved the reranker to {folder}" in out and "CrossEncoder('st-plugins/stsb-reranker')" in out
    assert registry.locate_stsb_reranker() == folder
    pairs = [("A man is eating pasta.", "A man is eating food.")]
    assert CrossEncoder(registry.STSB_RERANKER, device="cpu").predict(pairs) == pytest.approx(
        CrossEncoder(str(folder), device="cpu").predict(pairs), abs=0)


def test_train_reranker_passes_the_teacher_settings_to_the_cosent_teacher(tiny_sts_dir, tiny_bi_dir, tmp_path, monkeypatch,
                                                                          capsys):
    from st_plugins.training import recipes

    seen = []
    real = recipes._cosent_model

    def spy(base_model, train, dev, epochs, seed, device, show_progress_bar, learning_rate=2e-5, *args):
        seen.append((base_model, len(train), epochs, seed, learning_rate))
        return real(base_model, train, dev, epochs, seed, device, show_progress_bar, learning_rate, *args)

    monkeypatch.setattr(recipes, "_cosent_model", spy)
    code, _, _ = _run(capsys, "--data", str(tiny_sts_dir), "--out", str(tmp_path / "t"), "--base-model", str(tiny_bi_dir),
                      "--epochs", "1", "--teacher-epochs", "1", "--teacher-lr", "3e-4", "--seed", "5", "--no-progress")
    assert code == 0 and seen == [(str(tiny_bi_dir), 64, 1, 5, 3e-4)]


def test_train_reranker_quick_fails_below_its_bar(tiny_sts_dir, tiny_bi_dir, tmp_path, capsys):
    code, out, err = _run(capsys, "--data", str(tiny_sts_dir), "--out", str(tmp_path / "q"), "--base-model",
                          str(tiny_bi_dir), "--quick", "--no-progress")
    assert code == 1  # a random tiny model cannot reach the bar
    assert f"< {train_reranker.QUICK_MIN_SPEARMAN}" in err and "Saved the reranker to" in out


def test_train_reranker_missing_data_is_a_one_line_error(tmp_path, capsys):
    code, _, err = _run(capsys, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert code == 2
    assert err.startswith("st-plugins train-reranker: error: `data` folder") and err.count("\n") == 1


def test_train_reranker_task_qa_saves_under_its_own_name(tiny_wikiqa_dir, tiny_bi_dir, tmp_path, monkeypatch, capsys):
    from st_plugins.core.cross_encoder import CrossEncoder
    from st_plugins.training import named as registry

    monkeypatch.setenv("ST_PLUGINS_HOME", str(tmp_path / "home"))
    code, out, _ = _run(capsys, "--task", "qa", "--data", str(tiny_wikiqa_dir), "--base-model", str(tiny_bi_dir),
                        "--epochs", "1", "--lr", "1e-3", "--hard-negatives", "1", "--no-progress")
    folder = tmp_path / "home" / "qa-reranker"
    assert code == 0 and registry.locate_qa_reranker() == folder and registry.locate_stsb_reranker() is None
    assert out.startswith("WikiQA dev MAP ") and "(6 questions)" in out and "on 16 training examples" in out
    assert f"Saved the reranker to {folder}" in out and "CrossEncoder('st-plugins/qa-reranker')" in out
    pairs = [("What is the man eating?", "A man is eating pasta.")]
    assert CrossEncoder(registry.QA_RERANKER, device="cpu").predict(pairs) == pytest.approx(
        CrossEncoder(str(folder), device="cpu").predict(pairs), abs=0)


def test_train_reranker_task_qa_quick_fails_below_its_bar(tiny_wikiqa_dir, tiny_bi_dir, tmp_path, capsys):
    code, out, err = _run(capsys, "--task", "qa", "--data", str(tiny_wikiqa_dir), "--out", str(tmp_path / "q"),
                          "--base-model", str(tiny_bi_dir), "--quick", "--no-progress")
    assert code == 1  # a random tiny model on 9 test questions does not reach the bar
    assert "WikiQA test MAP" in err and f"< {train_reranker.QUICK_MIN_MAP}" in err and "Saved the reranker to" in out


def test_train_reranker_task_qa_missing_data_is_a_one_line_error(tmp_path, capsys):
    code, _, err = _run(capsys, "--task", "qa", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert code == 2
    assert err.startswith("st-plugins train-reranker: error: `data` folder") and "WikiQA-train.tsv" in err
    assert err.count("\n") == 1
