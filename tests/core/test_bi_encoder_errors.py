"""Every bad input gets a typed error naming the problem (never a torch stack trace)."""

from __future__ import annotations

import numpy as np
import pytest

from st_plugins.errors import InputTypeError, InputValueError, StPluginsError


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (None, r"`inputs` must be a str or a list of str; got NoneType"),
        (b"bytes", r"got bytes\. Decode bytes first"),
        (["ok", None], r"`inputs\[1\]` must be a str; got NoneType"),
        (["ok", "fine", 3.5], r"`inputs\[2\]` must be a str; got float \(3\.5\)"),
        ([["nested", "list"]], r"`inputs\[0\]` must be a str; got list"),
        (["a", b"raw"], r"`inputs\[1\]` must be a str; got bytes .*Decode bytes first"),
        ({"a": 1}, r"got dict"),
    ],
)
def test_bi_encoder_bad_input_raises_type_error_with_index(model, bad, pattern):
    with pytest.raises(TypeError, match=pattern) as info:
        model.encode(bad)
    assert isinstance(info.value, InputTypeError) and isinstance(info.value, StPluginsError)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"batch_size": 0}, r"`batch_size` must be a positive int; got 0"),
        ({"batch_size": -3}, r"`batch_size` must be a positive int; got -3"),
        ({"prompt_name": "nope"}, r"`prompt_name` 'nope' is not one of this model's prompts \['document', 'query'\]"),
        ({"precision": "int4"}, r"`precision` must be one of \['float32', 'int8', 'uint8', 'binary', 'ubinary'\]; got 'int4'"),
        ({"truncate_dim": 999}, r"`truncate_dim` must be at most the embedding dimension 384; got 999"),
        ({"truncate_dim": 0}, r"`truncate_dim` must be a positive int; got 0"),
        ({"output_value": "logits"}, r"`output_value` must be one of"),
    ],
)
def test_bi_encoder_bad_argument_raises_value_error(model, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        model.encode(["a text"], **kwargs)
    assert isinstance(info.value, InputValueError)


def test_bi_encoder_empty_inputs(model, oracle):
    assert model.encode([]).shape == (0, 384)
    assert model.encode([], truncate_dim=64).shape == (0, 64)
    assert tuple(model.encode([], convert_to_tensor=True).shape) == (0, 384)
    single = model.encode("")
    theirs = oracle.encode("")  # sentence-transformers on the same folder: [CLS] [SEP] only, mean-pooled
    assert single.shape == theirs.shape == (384,)
    np.testing.assert_allclose(single, theirs, rtol=0, atol=1e-5)  # the oracle tolerance (test_bi_encoder_oracle)


def test_bi_encoder_long_text_is_truncated_to_max_seq_length(model):
    long_text = "word " * 2000
    truncated = " ".join(["word"] * (model.max_seq_length - 2))
    np.testing.assert_allclose(model.encode(long_text), model.encode(truncated), atol=1e-6)


def test_bi_encoder_input_order_kept_and_single_is_1d(model):
    texts = ["short", "a much longer sentence with many more tokens in it than the others", "mid length text"]
    batch = model.encode(texts, batch_size=2)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(batch[i], model.encode(text), atol=1e-6)


def test_bi_encoder_int8_single_input_uses_calibration(model):
    one = model.encode("A single query", precision="int8")
    assert one.dtype == np.int8 and one.shape == (384,)
    assert model.quantization_ranges is None  # the built-in calibration does not change batch behaviour
    from st_plugins.util import quantize_embeddings

    builtin = model.calibrate_quantization(store=False)
    assert builtin.shape == (2, 384)
    assert np.array_equal(one, quantize_embeddings(model.encode(["A single query"]), "int8", ranges=builtin)[0])
    ranges = np.vstack([np.full(384, -0.2, np.float32), np.full(384, 0.2, np.float32)])
    explicit = model.encode("A single query", precision="uint8", ranges=ranges)
    assert np.array_equal(explicit, quantize_embeddings(model.encode(["A single query"]), "uint8", ranges=ranges)[0])


def test_bi_encoder_stored_calibration_ranges_apply_to_batches(tiny_bert_dir):
    from st_plugins import SentenceTransformer
    from st_plugins.util import quantize_embeddings

    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    texts = ["one text", "another text", "a third one"]
    own = model.encode(texts, precision="int8")
    assert np.array_equal(own, quantize_embeddings(model.encode(texts), "int8"))  # batch calibrates itself
    ranges = model.calibrate_quantization(["calibrate on this", "and on this", "and this too"])
    assert model.quantization_ranges is ranges
    assert np.array_equal(model.encode(texts, precision="int8"), quantize_embeddings(model.encode(texts), "int8", ranges=ranges))


def test_bi_encoder_encode_runs_in_eval_mode_and_restores_training_flag(tiny_bert_dir):
    from st_plugins import SentenceTransformer

    model = SentenceTransformer(str(tiny_bert_dir), device="cpu", backend="torch")  # the same engine before and after
    assert not model.training
    reference = model.encode(["dropout must be off", "while encoding"])
    model.train()
    np.testing.assert_array_equal(model.encode(["dropout must be off", "while encoding"]), reference)
    assert model.training and model.auto_model.training
