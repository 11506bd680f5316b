"""EmbedBatch / RerankBatch on a real Ray cluster: the same numbers as the single-process path, row for row."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from st_plugins.errors import InputTypeError, InputValueError  # noqa: E402
from st_plugins.ray import EmbedBatch, RerankBatch, embed_dataset, rerank_dataset  # noqa: E402


def test_embed_dataset_equals_single_process_row_for_row(ray_cluster, model, sentences):
    ds = ray.data.from_items([{"text": t, "row": i} for i, t in enumerate(sentences)], override_num_blocks=8)
    rows = embed_dataset(ds, concurrency=2, rows_per_batch=100).take_all()
    assert sorted(r["row"] for r in rows) == list(range(len(sentences)))  # every row once
    got = np.stack([r["embedding"] for r in sorted(rows, key=lambda r: r["row"])])
    want = model.encode(sentences, batch_size=64)
    assert got.dtype == np.float32 and got.shape == want.shape == (1000, 384)
    assert np.abs(got - want).max() <= 1e-6
    assert [r["text"] for r in sorted(rows, key=lambda r: r["row"])] == sentences


def test_embed_dataset_document_role_and_normalize_match_encode_document(ray_cluster, model, sentences):
    texts = sentences[:64]
    ds = ray.data.from_items([{"body": t} for t in texts], override_num_blocks=2)
    rows = embed_dataset(ds, column="body", output_column="vec", role="document", normalize_embeddings=True,
                         truncate_dim=128, concurrency=1).take_all()
    got = {r["body"]: r["vec"] for r in rows}
    want = model.encode_document(texts, normalize_embeddings=True)[:, :128]
    want /= np.linalg.norm(want, axis=1, keepdims=True)  # encode normalizes after truncating
    assert np.abs(np.stack([got[t] for t in texts]) - want).max() <= 1e-6


def test_rerank_dataset_equals_predict_row_for_row(ray_cluster, make_cross_folder, sentences):
    from st_plugins import CrossEncoder

    folder = make_cross_folder("bert", 1)
    pairs = list(zip(sentences[:200:2], sentences[1:200:2]))
    ds = ray.data.from_items([{"query": q, "document": d, "row": i} for i, (q, d) in enumerate(pairs)],
                             override_num_blocks=4)
    rows = sorted(rerank_dataset(ds, folder, concurrency=2, rows_per_batch=25).take_all(), key=lambda r: r["row"])
    want = CrossEncoder(folder, device="cpu").predict(pairs)
    got = np.array([r["score"] for r in rows], dtype=np.float32)
    assert len(rows) == len(pairs) and np.abs(got - want).max() <= 1e-6
    logits = RerankBatch(folder, apply_activation=False)({"query": np.array([q for q, _ in pairs], dtype=object),
                                                           "document": np.array([d for _, d in pairs], dtype=object)})
    assert np.abs(1 / (1 + np.exp(-logits["score"])) - want).max() <= 1e-6  # predict = sigmoid(logit)


def test_embed_batch_works_on_pandas_batches(model):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"text": ["A man is eating food.", "A monkey is playing drums."], "n": [1, 2]})
    out = EmbedBatch()(frame)
    assert list(out.columns) == ["text", "n", "embedding"]
    assert np.abs(np.stack(out["embedding"]) - model.encode(list(frame["text"]))).max() <= 1e-6


@pytest.mark.parametrize("kwargs, error, match", [
    ({"batch_size": 0}, InputValueError, r"`batch_size` must be a positive int; got 0"),
    ({"column": ""}, InputTypeError, r"`column` must be a non-empty str \(a column name\); got ''"),
    ({"backend": "fast"}, InputValueError, r"`backend` must be one of"),
    ({"role": "passage"}, InputValueError, r"`role` must be one of \[None, 'query', 'document'\]; got 'passage'"),
    ({"model": 3}, InputTypeError, r"`model` must be a model name, folder or hub id \(str\); got int"),
    ({"normalize_embeddings": "yes"}, InputTypeError, r"`normalize_embeddings` must be a bool; got 'yes'"),
    ({"prompt_name": 3}, InputTypeError, r"`prompt_name` must be a str or None; got int \(3\)"),
    ({"model_kwargs": "bf16"}, InputTypeError, r"`model_kwargs` must be a dict"),
])
def test_embed_batch_settings_are_checked_on_the_driver(kwargs, error, match):
    with pytest.raises(error, match=match):
        EmbedBatch(**kwargs)


def test_embed_batch_names_the_missing_column_and_the_bad_row():
    embed = EmbedBatch()
    with pytest.raises(InputValueError, match=r"No text column 'text' in the batch; it has \['body'\]"):
        embed({"body": np.array(["a"], dtype=object)})
    with pytest.raises(InputTypeError, match=r"`text\[1\]` must be a str; got NoneType"):
        embed({"text": np.array(["a", None], dtype=object)})


def test_a_bad_row_inside_ray_surfaces_as_the_typed_error(ray_cluster):
    """Ray Data wraps a map error in its UserCodeException (our message inside); with
    ``raise_original_map_exception`` the typed error itself reaches the driver."""
    ds = ray.data.from_items([{"text": "fine"}, {"text": 7}], override_num_blocks=1)
    with pytest.raises(Exception, match=r"`text\[1\]` must be a str; got int \(7\)"):
        embed_dataset(ds, concurrency=1).take_all()
    context = ray.data.DataContext.get_current()
    context.raise_original_map_exception = True
    try:
        ds = ray.data.from_items([{"text": "fine"}, {"text": 7}], override_num_blocks=1)  # takes the context now
        with pytest.raises(InputTypeError, match=r"`text\[1\]` must be a str; got int \(7\)"):
            embed_dataset(ds, concurrency=1).take_all()
    finally:
        context.raise_original_map_exception = False


def test_dataset_helpers_refuse_gpus_the_cluster_does_not_have(ray_cluster):
    ds = ray.data.from_items([{"text": "a"}])
    with pytest.raises(InputValueError, match=r"`num_gpus=1` per actor \(--gpus-per-actor\), but the Ray cluster has 0 GPUs"):
        embed_dataset(ds, num_gpus=1)
    with pytest.raises(InputValueError, match=r"`num_gpus=1` per actor .*has 0 GPUs"):
        embed_dataset(ds, num_gpus=1, concurrency=2)  # also with a fixed actor count: never a wait for ever
    with pytest.raises(InputValueError, match=r"`concurrency` must be a positive int; got 0"):
        rerank_dataset(ds, "st-plugins/stsb-reranker", concurrency=0)
    with pytest.raises(InputValueError, match=r"Unknown EmbedBatch settings \['batchsize'\]; allowed: \['model'"):
        embed_dataset(ds, batchsize=8)
