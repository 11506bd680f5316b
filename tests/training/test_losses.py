"""Our losses give sentence-transformers' values on the same tiny model, batch and labels."""

from __future__ import annotations

import pytest
import torch

from st_plugins.errors import InputValueError
from st_plugins.training import losses

ANCHORS = ["A man eats pasta.", "A girl plays violin.", "Cats sleep.", "The sun is hot today.", "x"]
POSITIVES = ["Someone is eating.", "Music is played.", "A dog barks loudly at night.", "It's warm.", "y"]
NEGATIVES = ["nothing", "something else", "a b c", "the", "z"]
LABELS = torch.tensor([0.9, 0.5, 0.1, 0.7, 0.5])  # a tie (0.5) on purpose: CoSENT skips equal labels


@pytest.fixture(scope="module")
def bi_pair(tiny_bi_dir, st_modules):
    import sentence_transformers as st

    from st_plugins.core.bi_encoder import SentenceTransformer

    ours, oracle = SentenceTransformer(str(tiny_bi_dir), device="cpu"), st.SentenceTransformer(str(tiny_bi_dir), device="cpu")
    return ours.eval(), oracle.eval()


@pytest.mark.parametrize("name, columns", [
    ("CoSENTLoss", [ANCHORS, POSITIVES]),
    ("CosineSimilarityLoss", [ANCHORS, POSITIVES]),
    ("MultipleNegativesRankingLoss", [ANCHORS, POSITIVES]),
    ("MultipleNegativesRankingLoss", [ANCHORS, POSITIVES, NEGATIVES]),
])
def test_losses_bi_encoder_match_oracle(bi_pair, st_modules, name, columns):
    ours, oracle = bi_pair
    expected = getattr(st_modules["losses"], name)(oracle)([oracle.tokenize(c) for c in columns], LABELS)
    got = getattr(losses, name)(ours)(columns, LABELS)
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)


@pytest.mark.parametrize("name", ["CoSENTLoss", "CosineSimilarityLoss", "MultipleNegativesRankingLoss"])
def test_losses_from_embeddings_match_oracle_exactly(st_modules, name):
    generator = torch.Generator().manual_seed(3)
    embeddings = [torch.randn(16, 8, generator=generator) for _ in range(2)]
    labels = torch.randint(0, 4, (16,), generator=generator).float() / 3  # many ties
    expected = getattr(st_modules["losses"], name)(None).compute_loss_from_embeddings(embeddings, labels)
    got = getattr(losses, name)(None).compute_loss_from_embeddings(embeddings, labels)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-6)


def test_losses_bi_encoder_gradients_reach_the_model(bi_pair):
    ours, _ = bi_pair
    ours.zero_grad()
    losses.CoSENTLoss(ours)([ANCHORS, POSITIVES], LABELS).backward()
    assert ours.auto_model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    ours.zero_grad()


def test_losses_bad_column_count_and_labels_raise(bi_pair):
    ours, _ = bi_pair
    with pytest.raises(InputValueError, match="exactly 2 text columns; got 3"):
        losses.CoSENTLoss(ours)([ANCHORS, POSITIVES, NEGATIVES], LABELS)
    with pytest.raises(InputValueError, match="one label per example"):
        losses.CosineSimilarityLoss(None).compute_loss_from_embeddings([torch.ones(2, 3), torch.ones(2, 3)], torch.ones(3))
    with pytest.raises(InputValueError, match="positive number"):
        losses.MultipleNegativesRankingLoss(None, scale=0)


@pytest.fixture(scope="module")
def cross_models(make_tiny_cross, st_modules):
    from st_plugins.core.cross_encoder import CrossEncoder

    out = {}
    for labels in (1, 3):
        folder = str(make_tiny_cross(labels))
        out[labels] = (CrossEncoder(folder, device="cpu").eval(), st_modules["cross"].CrossEncoder(folder, device="cpu").eval())
    return out


@pytest.mark.parametrize("name, num_labels, labels", [
    ("BinaryCrossEntropyLoss", 1, torch.tensor([1.0, 0.0, 0.3, 0.7, 1.0])),
    ("MSELoss", 1, torch.tensor([1.0, 0.0, 0.3, 0.7, 1.0])),
    ("CrossEntropyLoss", 3, torch.tensor([0, 2, 1, 1, 0])),
])
def test_losses_cross_encoder_match_oracle(cross_models, st_modules, name, num_labels, labels):
    ours, oracle = cross_models[num_labels]
    expected = getattr(st_modules["cross_losses"], name)(oracle)([ANCHORS, POSITIVES], labels)
    got = getattr(losses, name)(ours)([ANCHORS, POSITIVES], labels)
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)


def test_losses_cross_encoder_one_label_losses_refuse_three_labels(cross_models):
    with pytest.raises(InputValueError, match="1 output label; got one with 3"):
        losses.BinaryCrossEntropyLoss(cross_models[3][0])


def test_losses_listwise_softmax_equals_oracle_multiple_negatives_over_given_candidates(cross_models, st_modules):
    ours, oracle = cross_models[1]
    columns = [ANCHORS, POSITIVES, NEGATIVES, list(reversed(POSITIVES))]
    labels = torch.zeros(len(ANCHORS))
    # The oracle's own scoring and loss over the given candidates (its forward always adds in-batch ones).
    mnrl = st_modules["cross_losses"].MultipleNegativesRankingLoss(oracle)
    expected = mnrl.calculate_loss([mnrl.call_model_with_columns(ANCHORS, c) for c in columns[1:]], len(ANCHORS))
    got = losses.ListwiseSoftmaxLoss(ours, scale=10.0, activation_fn=torch.nn.Sigmoid())(columns, labels)
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)
    raw = ours.logits(ours.tokenize_pairs([(a, c[i]) for i, a in enumerate(ANCHORS) for c in columns[1:]]))
    want = torch.nn.functional.cross_entropy(raw.view(len(ANCHORS), 3), torch.zeros(len(ANCHORS), dtype=torch.long))
    assert losses.ListwiseSoftmaxLoss(ours)(columns, labels).item() == pytest.approx(want.item(), abs=1e-6)
    with pytest.raises(InputValueError, match="at least one negative"):
        losses.ListwiseSoftmaxLoss(ours)(columns[:2], labels)
