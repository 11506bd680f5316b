"""``TextTokenizer.from_folder`` (the torch-free install reads the tokenizer files itself) gives what transformers'
``AutoTokenizer`` gives on the same folder: the same facts and the same token ids, for texts and pairs."""

from __future__ import annotations

import json

import pytest

from st_plugins.core.runtime.tokenizer import TextTokenizer
from st_plugins.errors import ModelFormatError
from tests import factories

TEXTS = ["Hello World", "ÀÉÎõü Straße naïve café", "東京タワー and 北京", "émoji 😀🚀 mixed", "tab\there\nnewline",
         "  leading and trailing  ", "UPPER lower MiXeD", "a" * 700, "x", "", "control \x07 \x1b chars",
         "Ärger über Öl, Ÿ"]
SECONDS = TEXTS[1:] + TEXTS[:1]


def _folders():
    yield "minilm", factories.minilm_path()
    for arch in ("bert", "roberta", "distilbert", "electra"):
        yield f"cross-{arch}", factories.cross_folder(arch)


@pytest.mark.parametrize("name", ["minilm", "cross-bert", "cross-roberta", "cross-distilbert", "cross-electra"])
def test_from_folder_equals_transformers(name):
    from transformers import AutoTokenizer

    folder = dict(_folders())[name]
    ours = TextTokenizer.from_folder(folder, max_length=64)
    theirs = TextTokenizer.from_transformers(AutoTokenizer.from_pretrained(folder), max_length=64)
    assert ours.facts == theirs.facts
    assert [e.ids for e in ours.encode(TEXTS)] == [e.ids for e in theirs.encode(TEXTS)]
    pairs_ours, pairs_theirs = ours.encode(TEXTS, SECONDS), theirs.encode(TEXTS, SECONDS)
    assert [(e.ids, e.type_ids) for e in pairs_ours] == [(e.ids, e.type_ids) for e in pairs_theirs]


def test_from_folder_applies_the_configs_lowercasing_like_transformers(tmp_path):
    """A tokenizer_config.json that says do_lower_case=False over a tokenizer.json that lower-cases."""
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path / "cased"
    shutil.copytree(factories.minilm_path(), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    ours = TextTokenizer.from_folder(folder)
    theirs = TextTokenizer.from_transformers(AutoTokenizer.from_pretrained(folder))
    assert [e.ids for e in ours.encode(TEXTS)] == [e.ids for e in theirs.encode(TEXTS)]


def test_from_folder_errors_name_the_file(tmp_path):
    with pytest.raises(ModelFormatError, match="no tokenizer.json"):
        TextTokenizer.from_folder(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="tokenizer.json is not a readable tokenizer file"):
        TextTokenizer.from_folder(tmp_path)
    (tmp_path / "tokenizer.json").write_text((factories.minilm_path() / "tokenizer.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text("[1, 2]")
    with pytest.raises(ModelFormatError, match="tokenizer_config.json must hold a JSON object"):
        TextTokenizer.from_folder(tmp_path)
