"""``st-plugins cosent``: its own flags only, the settings it hands the recipe, the printed figures."""

from __future__ import annotations

import pytest

from st_plugins import cli
from st_plugins.commands import cosent
from st_plugins.training import recipes


def test_cosent_command_help_lists_its_flags(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["cosent", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and cosent.NAME == "cosent"
    assert all(flag in out for flag in ("--data", "--out", "--epochs", "--lr", "--seed", "--quick"))
    assert "--teacher" not in out and "--silver" not in out


@pytest.mark.parametrize("flag", [["--teacher-weight", "0.5"], ["--teacher", "cosent"], ["--silver", "3"],
                                  ["--max-length", "64"], ["--no-such-flag"]])
def test_cosent_command_refuses_other_recipes_flags(capsys, flag):
    with pytest.raises(SystemExit) as info:
        cli.main(["cosent", *flag])
    assert info.value.code == 2  # argparse's usage error, not a TypeError from the recipe
    assert "unrecognized arguments" in capsys.readouterr().err


def test_cosent_command_passes_its_settings_to_the_recipe(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake(data, out, **kwargs):
        seen.update(data=data, out=out, **kwargs)
        return recipes.RecipeResult(tmp_path / "bi", 0.5, 0.25, 0.125, 6.0, 12.0, 7)

    monkeypatch.setattr(recipes, "finetune_bi_encoder_cosent", fake)
    code = cli.main(["cosent", "--data", "d", "--out", "o", "--epochs", "2", "--lr", "5e-5", "--seed", "12",
                     "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert (seen["data"], seen["out"], seen["epochs"], seen["learning_rate"], seen["seed"]) == ("d", "o", 2, 5e-5, 12)
    assert (seen["base_model"], seen["quick"], seen["show_progress_bar"], seen["warmup_ratio"]) == (
        "all-MiniLM-L6-v2", False, False, 0.1)
    assert "test Spearman 0.2500 (before: 0.1250)" in out and f"Saved the bi-encoder to {tmp_path / 'bi'}" in out


def test_cosent_command_defaults_are_the_recipes():
    args = cli.build_parser().parse_args(["cosent"])
    assert (args.data, args.out, args.epochs, args.lr, args.seed, args.batch_size) == (None, None, 4, 2e-5, 0, 32)


def test_cosent_command_trains_and_prints_figures(tiny_sts_dir, tiny_bi_dir, tmp_path, capsys):
    code = cli.main(["cosent", "--data", str(tiny_sts_dir), "--out", str(tmp_path / "m"), "--base-model", str(tiny_bi_dir),
                     "--epochs", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"Saved the bi-encoder to {tmp_path / 'm'}" in out and "test Spearman" in out and "(before: " in out
    assert (tmp_path / "m" / "modules.json").is_file()


def test_cosent_command_without_data_says_how_to_point_at_it(monkeypatch, capsys):
    monkeypatch.delenv("ST_PLUGINS_DATA", raising=False)
    assert cli.main(["cosent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("st-plugins cosent: error: No evaluation data folder") and "--data DIR" in err
    assert "ST_PLUGINS_DATA" in err and err.count("\n") == 1
