"""Our CrossEncoder against sentence-transformers' CrossEncoder on the same tiny random folders.

Scores must agree to 1e-5 (max abs difference) at several batch sizes; rank gives the same order and
ids; our saved folders load in sentence-transformers with identical scores; the activation is chosen in
the same order; bad input raises typed errors naming the offending index.
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from st_plugins import CrossEncoder
from st_plugins.errors import InputTypeError, InputValueError, ModelFormatError, UnsafeCheckpointError
from tests.conftest import PASTA_CORPUS, PASTA_QUERY, SENTENCES
from tests.factories import ID2LABEL

st = pytest.importorskip("sentence_transformers")
TOL = 1e-5
PAIRS = [(q, d) for q in SENTENCES[:4] for d in SENTENCES] + [("word " * 300, "word " * 300), ("", "x")]
QUERY, DOCS = PASTA_QUERY, PASTA_CORPUS
_LOADED: dict = {}


@pytest.fixture
def pair_of(make_cross_folder):
    """``pair_of(arch, num_labels) -> (ours, oracle)`` on the same folder, loaded once per session."""

    def get(arch="bert", num_labels=1):
        if (arch, num_labels) not in _LOADED:
            folder = str(make_cross_folder(arch, num_labels))
            _LOADED[arch, num_labels] = CrossEncoder(folder, device="cpu"), st.CrossEncoder(folder, device="cpu")
        return _LOADED[arch, num_labels]

    return get


@pytest.mark.parametrize("arch,num_labels", [("bert", 1), ("bert", 3), ("roberta", 1), ("roberta", 3)])
def test_cross_encoder_predict_matches_oracle(pair_of, arch, num_labels):
    ours, theirs = pair_of(arch, num_labels)
    assert ours.num_labels == theirs.num_labels == num_labels
    assert ours.max_length == theirs.max_seq_length == 128
    assert type(ours.activation_fn) is type(theirs.activation_fn)
    for batch_size, pairs in ((1, PAIRS[:8] + PAIRS[-2:]), (3, PAIRS), (32, PAIRS)):
        a, b = ours.predict(pairs, batch_size=batch_size), theirs.predict(pairs, batch_size=batch_size)
        assert a.dtype == np.float32 and a.shape == b.shape
        assert a.shape == ((len(pairs),) if num_labels == 1 else (len(pairs), num_labels))
        assert np.abs(a - b).max() <= TOL, batch_size


@pytest.mark.parametrize("arch", ["distilbert", "electra"])
def test_cross_encoder_other_architectures_match_oracle(pair_of, arch):
    ours, theirs = pair_of(arch, 1)
    assert np.abs(ours.predict(PAIRS, batch_size=5) - theirs.predict(PAIRS, batch_size=5)).max() <= TOL


def test_cross_encoder_softmax_tensor_and_list_outputs_match_oracle(pair_of):
    ours, theirs = pair_of("bert", 3)
    a = ours.predict(PAIRS, apply_softmax=True, convert_to_tensor=True)
    b = theirs.predict(PAIRS, apply_softmax=True, convert_to_tensor=True)
    assert isinstance(a, torch.Tensor) and a.shape == b.shape
    assert (a - b).abs().max().item() <= TOL
    torch.testing.assert_close(a.sum(dim=1), torch.ones(len(PAIRS)))
    rows = ours.predict(PAIRS[:3], convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 3 and rows[0].shape == (3,)
    custom = ours.predict(PAIRS, activation_fn=nn.Tanh())
    assert np.abs(custom - theirs.predict(PAIRS, activation_fn=nn.Tanh())).max() <= TOL


def test_cross_encoder_max_length_truncates_like_oracle(make_cross_folder):
    folder = str(make_cross_folder("roberta", 1))
    ours = CrossEncoder(folder, max_length=12, device="cpu")
    theirs = st.CrossEncoder(folder, max_length=12, device="cpu")
    assert ours.max_length == theirs.max_seq_length == 12
    assert np.abs(ours.predict(PAIRS, batch_size=4) - theirs.predict(PAIRS, batch_size=4)).max() <= TOL
    full = CrossEncoder(folder, device="cpu").predict(PAIRS)
    assert np.abs(ours.predict(PAIRS) - full).max() > 1e-4  # truncation really changed the input


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_cross_encoder_rank_matches_oracle(pair_of, arch):
    ours, theirs = pair_of(arch, 1)
    a = ours.rank(QUERY, DOCS, return_documents=True, batch_size=4)
    b = theirs.rank(QUERY, DOCS, return_documents=True, batch_size=4)
    assert [h["corpus_id"] for h in a] == [h["corpus_id"] for h in b]
    assert [h["text"] for h in a] == [DOCS[h["corpus_id"]] for h in a]
    assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) <= TOL
    assert [h["score"] for h in a] == sorted((h["score"] for h in a), reverse=True)
    top = ours.rank(QUERY, DOCS, top_k=3)
    assert [h["corpus_id"] for h in top] == [h["corpus_id"] for h in b[:3]] and set(top[0]) == {"corpus_id", "score"}
    assert ours.rank(QUERY, []) == []


def test_cross_encoder_rank_ties_keep_input_order(pair_of):
    ours, theirs = pair_of("bert", 1)
    def flat(x):  # every score ties
        return torch.zeros_like(x)

    ids = [h["corpus_id"] for h in ours.rank(QUERY, DOCS, activation_fn=flat)]
    assert ids == list(range(len(DOCS))) == [h["corpus_id"] for h in theirs.rank(QUERY, DOCS, activation_fn=flat)]


def test_cross_encoder_rank_rejects_multi_label_models(pair_of):
    ours, theirs = pair_of("bert", 3)
    with pytest.raises(ValueError):
        theirs.rank(QUERY, DOCS)
    with pytest.raises(InputValueError, match="num_labels=1.*3 labels.*entailment"):
        ours.rank(QUERY, DOCS)


def test_cross_encoder_single_pair_gives_scalar(pair_of):
    ours, theirs = pair_of("bert", 1)
    a, b = ours.predict(("A man eats.", "Food.")), theirs.predict(("A man eats.", "Food."))
    assert isinstance(a, np.float32) and a.shape == () and abs(a - b) <= TOL
    assert ours.predict(["A man eats.", "Food."]) == pytest.approx(float(a), abs=TOL)
    row = pair_of("bert", 3)[0].predict(("A man eats.", "Food."))
    assert row.shape == (3,) and row.dtype == np.float32


def test_cross_encoder_empty_input_gives_empty_array(pair_of):
    one, three = pair_of("bert", 1)[0], pair_of("bert", 3)[0]
    assert one.predict([]).shape == (0,) and one.predict([]).dtype == np.float32
    assert three.predict([]).shape == (0, 3)
    assert one.predict([], convert_to_tensor=True).shape == (0,)
    assert one.predict([], convert_to_numpy=False) == []


@pytest.mark.parametrize(
    "bad,where",
    [
        (None, "`inputs` must be a list"),
        ("just a string", "`inputs` must be a list"),
        ([("q", "d"), ("only one",)], r"`inputs\[1\]` must be a pair"),
        ([("q", "d"), 5], r"`inputs\[1\]` must be a pair"),
        ([("q", "d"), ("a", "b", "c")], r"`inputs\[1\]` must be a pair"),
        ([("q", None)], r"`inputs\[0\]\[1\]` must be a str; got NoneType"),
        ([("q", "d"), ("q", "d"), (3, "d")], r"`inputs\[2\]\[0\]` must be a str; got int"),
        ([("q", b"bytes")], r"`inputs\[0\]\[1\]` must be a str; got bytes"),
    ],
)
def test_cross_encoder_bad_input_names_the_index(pair_of, bad, where):
    ours, _ = pair_of("bert", 1)
    with pytest.raises(InputTypeError, match=where) as info:
        ours.predict(bad)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "8"])
def test_cross_encoder_bad_batch_size(pair_of, batch_size):
    ours, _ = pair_of("bert", 1)
    with pytest.raises(InputValueError, match="`batch_size` must be a positive int"):
        ours.predict(PAIRS[:2], batch_size=batch_size)


def test_cross_encoder_rank_bad_input(pair_of):
    ours, _ = pair_of("bert", 1)
    with pytest.raises(InputTypeError, match="`query` must be a str; got NoneType"):
        ours.rank(None, DOCS)
    with pytest.raises(InputTypeError, match="`documents` must be a list of str; got a single str"):
        ours.rank(QUERY, "one document")
    with pytest.raises(InputTypeError, match=r"`documents\[1\]` must be a str; got int"):
        ours.rank(QUERY, ["a", 7])
    with pytest.raises(InputValueError, match="`top_k` must be a positive int; got 0"):
        ours.rank(QUERY, DOCS, top_k=0)


def _edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


HF_IDENTITY = {"sentence_transformers": {"activation_fn": "torch.nn.modules.linear.Identity"}}
LEGACY_TANH = {"sbert_ce_default_activation_function": "torch.nn.modules.activation.Tanh"}
DOUBLED = "tests.factories.Doubled"


@pytest.mark.parametrize(
    "st_layout,config_edits,kwargs,expected",
    [
        (False, {}, {}, "Sigmoid"),  # default for one label
        (False, HF_IDENTITY, {}, "Identity"),  # config.json sentence_transformers.activation_fn
        (False, LEGACY_TANH, {}, "Tanh"),  # legacy key
        (False, {**HF_IDENTITY, **LEGACY_TANH}, {}, "Identity"),  # new key before legacy key
        (True, HF_IDENTITY, {}, "Tanh"),  # config_sentence_transformers.json before config.json
        (True, HF_IDENTITY, {"activation_fn": nn.ReLU()}, "ReLU"),  # constructor first
        (False, {"sentence_transformers": {"activation_fn": DOUBLED}}, {}, "Sigmoid"),  # untrusted: skipped
        (False, {"sentence_transformers": {"activation_fn": DOUBLED}}, {"trust_remote_code": True}, "Doubled"),
    ],
)
def test_cross_encoder_activation_resolution_order(make_cross_folder, tmp_path, st_layout, config_edits, kwargs,
                                                   expected):
    folder = tmp_path / "model"
    if st_layout:  # sentence-transformers writes its own 6.x folder with activation Tanh
        st.CrossEncoder(str(make_cross_folder("bert", 1)), activation_fn=nn.Tanh(), device="cpu").save(str(folder))
    else:
        shutil.copytree(make_cross_folder("bert", 1), folder)
    _edit_json(folder / "config.json", **config_edits)
    untrusted = DOUBLED in json.dumps(config_edits) and not kwargs.get("trust_remote_code")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = CrossEncoder(str(folder), device="cpu", **kwargs)
    assert any("trust_remote_code" in str(w.message) for w in caught) == untrusted
    theirs = st.CrossEncoder(str(folder), device="cpu", **kwargs)
    assert type(ours.activation_fn).__name__ == type(theirs.activation_fn).__name__ == expected
    assert np.abs(ours.predict(PAIRS[:6]) - theirs.predict(PAIRS[:6])).max() <= TOL
    assert not hasattr(ours.config, "sbert_ce_default_activation_function")


def test_cross_encoder_default_activation_is_identity_for_many_labels(pair_of):
    assert isinstance(pair_of("bert", 3)[0].activation_fn, nn.Identity)


@pytest.mark.parametrize("arch,num_labels,kwargs", [("bert", 1, {"activation_fn": nn.Tanh(), "max_length": 32}),
                                                    ("roberta", 3, {})])
def test_cross_encoder_save_loads_in_oracle_with_identical_scores(make_cross_folder, tmp_path, arch, num_labels,
                                                                  kwargs):
    ours = CrossEncoder(str(make_cross_folder(arch, num_labels)), device="cpu", **kwargs)
    ours.save(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config_sentence_transformers.json").read_text())
    assert config["model_type"] == "CrossEncoder"
    assert config["activation_fn"] == f"{type(ours.activation_fn).__module__}.{type(ours.activation_fn).__name__}"
    theirs = st.CrossEncoder(str(tmp_path / "saved"), device="cpu")
    again = CrossEncoder(tmp_path / "saved", device="cpu")
    assert type(theirs.activation_fn) is type(ours.activation_fn) is type(again.activation_fn)
    assert theirs.max_seq_length == ours.max_length == again.max_length
    assert theirs.config.id2label == ours.config.id2label
    expected = ours.predict(PAIRS, batch_size=8)
    assert np.abs(theirs.predict(PAIRS, batch_size=8) - expected).max() <= 1e-6
    assert np.abs(again.predict(PAIRS, batch_size=8) - expected).max() <= 1e-6


def test_cross_encoder_save_leaves_the_live_model_unchanged(make_cross_folder, tmp_path):
    ours = CrossEncoder(str(make_cross_folder("bert", 1)), device="cpu", max_length=40)
    before = (ours.config.to_dict(), ours.tokenizer.model_max_length, ours.max_length, ours.graph)
    ours.save(tmp_path / "saved")
    assert (ours.config.to_dict(), ours.tokenizer.model_max_length, ours.max_length, ours.graph) == before
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["sentence_transformers"]["activation_fn"] == "torch.nn.modules.activation.Sigmoid"
    assert json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text())["model_max_length"] == 40


def test_cross_encoder_keeps_id2label(pair_of):
    assert pair_of("bert", 3)[0].config.id2label == ID2LABEL


def test_cross_encoder_refuses_pickle_unless_allowed(make_cross_folder, tmp_path):
    folder = tmp_path / "pickle"
    shutil.copytree(make_cross_folder("bert", 1), folder)
    state = __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(folder / "model.safetensors"))
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(UnsafeCheckpointError, match="allow_pickle=True"):
        CrossEncoder(str(folder), device="cpu")
    loaded = CrossEncoder(str(folder), device="cpu", allow_pickle=True)
    reference = CrossEncoder(str(make_cross_folder("bert", 1)), device="cpu")
    assert np.abs(loaded.predict(PAIRS[:8]) - reference.predict(PAIRS[:8])).max() <= 1e-6


def test_cross_encoder_loads_registered_name_and_hub_cache(make_cross_folder, tmp_path, monkeypatch):
    from st_plugins.core import resolve

    folder = make_cross_folder("bert", 1)
    monkeypatch.setitem(resolve._REGISTRY, "tiny-cross-encoder-test", lambda: folder)
    expected = CrossEncoder(str(folder), device="cpu").predict(PAIRS[:5])
    assert np.abs(CrossEncoder("tiny-cross-encoder-test", device="cpu").predict(PAIRS[:5]) - expected).max() == 0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = tmp_path / "models--cross-encoder--tiny-ce" / "snapshots" / ("b" * 40)
    shutil.copytree(folder, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("b" * 40)
    for name in ("cross-encoder/tiny-ce", "tiny-ce"):  # a bare name also tries cross-encoder/<name>
        scores = CrossEncoder(name, cache_folder=str(tmp_path), device="cpu").predict(PAIRS[:5])
        assert np.abs(scores - expected).max() == 0


def test_cross_encoder_bare_backbone_gets_one_label(tiny_bert_dir):
    ours, theirs = CrossEncoder(str(tiny_bert_dir), device="cpu"), st.CrossEncoder(str(tiny_bert_dir), device="cpu")
    assert ours.num_labels == theirs.num_labels == 1 and ours.max_length == theirs.max_seq_length
    assert isinstance(ours.activation_fn, nn.Sigmoid)


def test_cross_encoder_unsupported_module_layout_is_refused(make_cross_folder, tmp_path):
    folder = tmp_path / "two_modules"
    shutil.copytree(make_cross_folder("bert", 1), folder)
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"model_type": "CrossEncoder"}))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.base.modules.dense.Dense"},
    ]))
    with pytest.raises(ModelFormatError, match="only one Transformer module"):
        CrossEncoder(str(folder), device="cpu")


def test_cross_encoder_get_model_returns_one_shared_instance(make_cross_folder):
    from st_plugins.core.cache import get_model

    folder = make_cross_folder("roberta", 1)
    first = get_model("cross", folder, device="cpu")
    assert isinstance(first, CrossEncoder) and get_model("cross", str(folder), device="cpu") is first


def test_cross_encoder_training_hooks_are_differentiable(make_cross_folder):
    model = CrossEncoder(str(make_cross_folder("bert", 1)), device="cpu")
    features = model.tokenize_pairs(PAIRS[:6])
    assert features["input_ids"].shape[0] == 6 and "attention_mask" in features
    logits = model.logits(features)
    assert logits.shape == (6, 1) and logits.dtype == torch.float32 and logits.requires_grad
    probs = torch.sigmoid(logits).squeeze(-1).detach().numpy()
    np.testing.assert_allclose(probs, model.predict(PAIRS[:6]), atol=TOL, rtol=0)
    nn.functional.binary_cross_entropy_with_logits(logits.squeeze(-1), torch.ones(6)).backward()
    assert model.model.classifier.weight.grad is not None
    model.train()
    model.predict(PAIRS[:2])
    assert model.training  # predict restores the mode it found
    with pytest.raises(InputValueError, match="at least one"):
        model.tokenize_pairs([])


def test_cross_encoder_starts_in_eval_mode_and_threads_agree(pair_of):
    from concurrent.futures import ThreadPoolExecutor

    ours, _ = pair_of("bert", 1)
    assert not ours.training and not ours.model.training  # no dropout at inference
    expected = ours.predict(PAIRS)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda bs: ours.predict(PAIRS, batch_size=bs), [2, 3, 5, 7, 11, 32]))
    assert max(np.abs(r - expected).max() for r in results) <= TOL


def test_cross_encoder_bfloat16_weights_give_float32_scores(make_cross_folder):
    folder = str(make_cross_folder("bert", 1))
    ours = CrossEncoder(folder, device="cpu", model_kwargs={"dtype": "bfloat16"})
    theirs = st.CrossEncoder(folder, device="cpu", model_kwargs={"dtype": torch.bfloat16})
    assert ours.model.dtype == torch.bfloat16
    a, b = ours.predict(PAIRS[:10], batch_size=1), theirs.predict(PAIRS[:10], batch_size=1)
    assert a.dtype == np.float32 and np.abs(a - b).max() <= TOL
