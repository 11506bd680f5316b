"""The trainer: the loss falls, runs are reproducible, the best checkpoint is kept, saved models reload."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from st_plugins.errors import InputTypeError, InputValueError
from st_plugins.training import (
    BinaryCrossEntropyLoss, CoSENTLoss, CrossEncoderCorrelationEvaluator, CrossEntropyLoss, Example,
    MultipleNegativesRankingLoss, Trainer, TrainingArguments,
)

from .conftest import sentences, sts_rows

ROWS = sts_rows(48, 1)
STS = [Example((a, b), s / 5) for a, b, s in ROWS]
ARGS = TrainingArguments(epochs=3, batch_size=16, learning_rate=1e-3, seed=7, show_progress_bar=False)


def _bi(folder):
    from st_plugins.core.bi_encoder import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


def _cross(folder):
    from st_plugins.core.cross_encoder import CrossEncoder

    return CrossEncoder(str(folder), device="cpu")


def _mean_loss(loss, examples) -> float:
    loss.model.eval()
    with torch.no_grad():
        columns = [list(c) for c in zip(*(e.texts for e in examples))]
        return loss(columns, torch.tensor([e.label for e in examples])).item()


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_trainer_bi_encoder_cosent_loss_falls_and_reloads(tiny_bi_dir, tmp_path):
    model = _bi(tiny_bi_dir)
    loss = CoSENTLoss(model)
    before = _mean_loss(loss, STS)
    result = Trainer(model, loss, STS, ARGS).train(tmp_path / "out")
    assert result.steps == 9 and len(result.losses) == 9
    assert _mean_loss(loss, STS) < before
    texts = sentences(5, 3)
    reloaded = _bi(tmp_path / "out")
    saved = reloaded.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    np.testing.assert_allclose(reloaded.encode(texts), model.encode(texts), rtol=0, atol=1e-6)


def test_trainer_bi_encoder_mnrl_loss_falls(tiny_bi_dir):
    model = _bi(tiny_bi_dir)
    pairs = [Example((a, a.lower())) for a in sentences(32, 4)]
    loss = MultipleNegativesRankingLoss(model)
    before = _mean_loss(loss, pairs)
    Trainer(model, loss, pairs, ARGS).train()
    assert _mean_loss(loss, pairs) < before


def test_trainer_same_seed_same_weights_other_seed_differs(tiny_bi_dir):
    runs = []
    for seed in (7, 7, 8):
        model = _bi(tiny_bi_dir)
        args = TrainingArguments(epochs=1, batch_size=8, learning_rate=1e-3, seed=seed, show_progress_bar=False)
        Trainer(model, CoSENTLoss(model), STS[:24], args).train()
        runs.append(_weights(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_trainer_cross_encoder_bce_learns_and_reloads(make_tiny_cross, tmp_path):
    model = _cross(make_tiny_cross(1))
    loss = BinaryCrossEntropyLoss(model)
    before = _mean_loss(loss, STS)
    args = TrainingArguments(epochs=4, batch_size=16, learning_rate=1e-3, seed=1, show_progress_bar=False)
    Trainer(model, loss, STS, args).train(tmp_path / "cross")
    assert _mean_loss(loss, STS) < before
    pairs = [(a, b) for a, b, _ in ROWS[:6]]
    reloaded = _cross(tmp_path / "cross")
    saved = reloaded.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    np.testing.assert_allclose(reloaded.predict(pairs), model.predict(pairs), rtol=0, atol=1e-6)


def test_trainer_cross_encoder_cross_entropy_loss_falls(make_tiny_cross):
    model = _cross(make_tiny_cross(3))
    examples = [Example((a, b), int(s // 2)) for a, b, s in ROWS]  # classes 0, 1, 2
    loss = CrossEntropyLoss(model)
    before = _mean_loss(loss, examples)
    Trainer(model, loss, examples, ARGS).train()
    assert _mean_loss(loss, examples) < before


class _Scripted:
    """An evaluator returning a scripted score per call, recording the weights it saw."""

    primary_metric = "score"

    def __init__(self, scores):
        self.scores, self.seen = list(scores), []

    def __call__(self, model, output_path=None, epoch=-1, steps=-1):
        self.seen.append(_weights(model))
        return {"score": self.scores.pop(0)}


def test_trainer_restores_the_best_evaluated_weights(tiny_bi_dir):
    model = _bi(tiny_bi_dir)
    evaluator = _Scripted([0.1, 0.9, 0.5])  # the best is after epoch 2 of 3
    result = Trainer(model, CoSENTLoss(model), STS, ARGS, evaluator).train()
    assert [(e, s) for e, s, _ in result.evaluations] == [(0, 3), (1, 6), (2, 9)]
    assert result.best_score == 0.9 and result.best_step == 6
    best = evaluator.seen[1]
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
    assert not all(torch.equal(evaluator.seen[2][k], v) for k, v in model.state_dict().items())


def test_trainer_fast_backends_see_the_trained_weights(tiny_bi_dir):
    model = _bi(tiny_bi_dir)
    backend, texts = model.backend, sentences(6, 2)
    before = model.encode(texts)  # may build an ONNX runner for the folder's weights

    class Recorder(_Scripted):
        def __call__(self, model, output_path=None, epoch=-1, steps=-1):
            self.seen.append((model.backend, model.encode(texts)))
            return {"score": float(steps)}

    evaluator = Recorder([])
    Trainer(model, CoSENTLoss(model), STS, ARGS, evaluator).train()
    assert [b for b, _ in evaluator.seen] == ["torch"] * 3
    assert not np.allclose(evaluator.seen[0][1], evaluator.seen[1][1])  # the evaluator saw training progress
    assert model.backend == backend
    after = model.encode(texts)
    model.backend = "torch"
    np.testing.assert_allclose(after, model.encode(texts), rtol=0, atol=1e-5)
    assert not np.allclose(after, before)


def test_trainer_eval_steps_and_max_steps(tiny_bi_dir):
    model = _bi(tiny_bi_dir)
    args = TrainingArguments(epochs=3, batch_size=16, learning_rate=1e-3, eval_steps=2, max_steps=5, show_progress_bar=False)
    result = Trainer(model, CoSENTLoss(model), STS, args, _Scripted([0.1] * 10)).train()
    assert result.steps == 5
    assert [s for _, s, _ in result.evaluations] == [2, 3, 4, 5]


def test_trainer_with_a_real_evaluator_keeps_its_primary_metric(make_tiny_cross):
    model = _cross(make_tiny_cross(1))
    evaluator = CrossEncoderCorrelationEvaluator([[a, b] for a, b, _ in ROWS], [s for *_, s in ROWS], name="dev")
    args = TrainingArguments(epochs=2, batch_size=16, learning_rate=1e-3, show_progress_bar=False)
    result = Trainer(model, BinaryCrossEntropyLoss(model), STS, args, evaluator).train()
    assert result.best_score == max(m["dev_spearman"] for *_, m in result.evaluations)


def test_trainer_schedule_warms_up_then_decays(tiny_bi_dir):
    model = _bi(tiny_bi_dir)
    args = TrainingArguments(epochs=10, batch_size=48, learning_rate=1.0, warmup_ratio=0.2, show_progress_bar=False)
    trainer = Trainer(model, CoSENTLoss(model), STS, args)
    optimizer, scheduler = trainer._optimizer()
    rates = []
    for _ in range(10):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125])
    no_decay = optimizer.param_groups[1]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) > 0


def test_trainer_bad_arguments_raise(tiny_bi_dir):
    with pytest.raises(InputValueError, match="`batch_size` must be a positive int; got 0"):
        TrainingArguments(batch_size=0)
    with pytest.raises(InputValueError, match=r"`warmup_ratio` must be in \[0, 1\)"):
        TrainingArguments(warmup_ratio=1.5)
    with pytest.raises(InputValueError, match="at least one Example"):
        Trainer(None, None, [])
    with pytest.raises(InputTypeError, match=r"`train_examples\[0\]` must be an st_plugins.training.Example"):
        Trainer(None, None, [("a", "b", 1.0)])
    with pytest.raises(InputValueError, match=r"`train_examples\[1\]` has 3 texts"):
        Trainer(None, None, [Example(("a", "b")), Example(("a", "b", "c"))])


# ----------------------------------------------------------------------------- no-duplicate batches
def test_trainer_no_duplicate_batches_exact_small_case():
    from st_plugins.training.trainer import no_duplicate_batches

    rows = [("a", "x"), ("b", "x"), ("c", "y"), ("d", "x"), ("x", "e")]
    assert no_duplicate_batches([0, 1, 2, 3, 4], rows, 2) == [[0, 2], [1], [3], [4]]  # "x" in any column counts
    assert no_duplicate_batches([3, 2, 1, 0, 4], rows, 3) == [[3, 2], [1], [0], [4]]


def test_trainer_no_duplicate_batches_equal_sentence_transformers_sampler():
    pytest.importorskip("sentence_transformers")
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    class Dataset:  # the part of datasets.Dataset the sampler reads (datasets is not installed here)
        def __init__(self, columns):
            self.columns, self.column_names = columns, list(columns)

        @classmethod
        def from_dict(cls, columns):
            return cls(columns)

        def __len__(self):
            return len(next(iter(self.columns.values())))

        def __getitem__(self, i):
            return {k: v[i] for k, v in self.columns.items()}

    from st_plugins.training.trainer import no_duplicate_batches

    rng = np.random.default_rng(0)
    captions = [f"digit {d}" for d in rng.integers(0, 10, size=200)]
    anchors = [f"image {i}" for i in range(200)]
    dataset = Dataset.from_dict({"anchor": anchors, "positive": captions})
    for seed in (0, 5):
        sampler = NoDuplicatesBatchSampler(dataset, batch_size=8, drop_last=False, generator=torch.Generator(), seed=seed)
        theirs = list(sampler)
        order = torch.randperm(200, generator=torch.Generator().manual_seed(seed), dtype=torch.int32).tolist()
        assert no_duplicate_batches(order, list(zip(anchors, captions)), 8) == theirs


def test_trainer_no_duplicates_batches_hold_each_caption_once_and_every_example_once():
    seen: list[list[str]] = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, columns, labels):
            seen.append(list(columns[1]))
            return self.w.sum() * 0.0

    model = torch.nn.Linear(1, 1)
    model.save = lambda path: None
    digits = [i % 10 for i in range(95)] + [3] * 25  # one digit far more common than the rest
    examples = [Example((f"image {i}", f"a handwritten digit {d}")) for i, d in enumerate(digits)]
    args = TrainingArguments(epochs=2, batch_size=10, seed=1, no_duplicates=True, show_progress_bar=False)
    trainer = Trainer(model, Spy(), examples, args)
    result = trainer.train()
    assert all(len(set(batch)) == len(batch) <= 10 for batch in seen)
    assert sorted(c for batch in seen for c in batch) == sorted(2 * [e.texts[1] for e in examples])
    assert result.steps == len(seen) == trainer.total_steps > 2 * 12  # more than ceil(120 / 10) batches an epoch
    with pytest.raises(InputValueError, match="`no_duplicates` and `group_by_length`"):
        TrainingArguments(no_duplicates=True, group_by_length=True)
