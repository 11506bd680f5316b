"""``st-plugins train-clip-digits``: registered, its flags reach the recipe, the bar sets the exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from st_plugins import cli
from st_plugins.training import clip_digits


def _fake(accuracy: float, calls: list):
    def train(out, **kwargs):
        calls.append((out, kwargs))
        return clip_digits.DigitsResult(Path(out or "x"), accuracy, 0.95, [], kwargs["quick"], 3, 390, 1200, 1.0, 1.0,
                                        kwargs["seed"])

    return train


@pytest.mark.parametrize("quick, accuracy, code", [(True, 0.81, 0), (True, 0.79, 1), (False, 0.91, 0), (False, 0.89, 1)])
def test_train_clip_digits_command_fails_below_its_bar(monkeypatch, capsys, tmp_path, quick, accuracy, code):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    calls: list = []
    monkeypatch.setattr(clip_digits, "train_clip_digits", _fake(accuracy, calls))
    argv = ["train-clip-digits", "--output", str(tmp_path), "--seed", "4", "--no-progress"] + (["--quick"] if quick else [])
    assert cli.main(argv) == code
    out, kwargs = calls[0]
    assert out == str(tmp_path) and kwargs["seed"] == 4 and kwargs["quick"] is quick and kwargs["threads"] == 1
    captured = capsys.readouterr()
    assert f"zero-shot accuracy {accuracy:.4f}" in captured.out
    assert ("< 0.8" if quick else "< 0.9") in captured.err if code else captured.err == ""
