"""Training losses with sentence-transformers' names and math.

Every loss is an ``nn.Module`` built on the model it trains and called as
``loss(columns, labels)``: ``columns`` is a list of text columns (one list of str per input
column) and ``labels`` a tensor. The bi-encoder losses embed each column with
``model.tokenize`` / ``model(features)["sentence_embedding"]`` and also expose
``compute_loss_from_embeddings(embeddings, labels)``; the cross-encoder losses score pairs with
``model.tokenize_pairs`` / ``model.logits``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from typing import Any

import torch
from torch import Tensor, nn

from st_plugins.core.similarity import cos_sim, pairwise_cos_sim
from st_plugins.errors import InputValueError

__all__ = [
    "MultipleNegativesRankingLoss", "CoSENTLoss", "CosineSimilarityLoss",
    "BinaryCrossEntropyLoss", "CrossEntropyLoss", "MSELoss", "ListwiseSoftmaxLoss",
]


def _check_columns(columns: Sequence[Sequence[str]], expected: int | None, loss: nn.Module) -> None:
    count = len(columns)
    if (expected is not None and count != expected) or count < 2:
        allowed = f"exactly {expected}" if expected is not None else "at least 2"
        raise InputValueError(
            f"`columns` of {type(loss).__name__} must hold {allowed} text columns; got {count}. "
            "Give each example that many texts."
        )


def _check_labels(labels: Tensor, batch_size: int, loss: nn.Module) -> Tensor:
    if labels.numel() != batch_size:
        raise InputValueError(
            f"`labels` of {type(loss).__name__} must hold one label per example ({batch_size}); "
            f"got {labels.numel()} with shape {tuple(labels.shape)}."
        )
    return labels.view(-1)


def _hold(loss: nn.Module, model: Any) -> None:
    """Keep ``model`` on ``loss`` and register its torch engine, so ``loss.parameters()`` holds its weights
    (as in sentence-transformers, where the model is itself a module)."""
    loss.model = model
    loss.engine = model._handed_out() if hasattr(model, "_handed_out") else model


class _BiEncoderLoss(nn.Module):
    columns: int | None = 2

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        _hold(self, model)

    def embed(self, columns: Sequence[Sequence[str]]) -> list[Tensor]:
        _check_columns(columns, self.columns, self)
        device = self.model.device
        out = []
        for column in columns:
            features = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in self.model.tokenize(list(column)).items()}
            out.append(self.model(features)["sentence_embedding"])
        return out

    def forward(self, columns: Sequence[Sequence[str]], labels: Tensor) -> Tensor:
        return self.compute_loss_from_embeddings(self.embed(columns), labels)


class MultipleNegativesRankingLoss(_BiEncoderLoss):
    """In-batch negatives: each anchor must pick its own positive among all candidates.

    Columns: ``(anchor, positive[, negative, ...])``; labels are ignored.

    Args:
        model: The :class:`~st_plugins.SentenceTransformer` being trained.
        scale: Inverse temperature applied to the similarities.
        similarity_fct: Matrix similarity, ``cos_sim`` by default.
    """

    columns = None

    def __init__(self, model: nn.Module, scale: float = 20.0, similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim) -> None:
        super().__init__(model)
        if not scale > 0:
            raise InputValueError(f"`scale` must be a positive number; got {scale!r}.")
        self.scale = scale
        self.similarity_fct = similarity_fct

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        queries, candidates = embeddings[0], torch.cat(embeddings[1:], dim=0)
        scores = self.similarity_fct(queries, candidates) * self.scale
        rows = torch.arange(queries.size(0), device=queries.device)
        return -(scores[rows, rows] - torch.logsumexp(scores, dim=1)).mean()


class CoSENTLoss(_BiEncoderLoss):
    """``log(1 + sum(exp(scale * (s(k,l) - s(i,j)))))`` over pairs where label(i,j) > label(k,l).

    Columns: ``(sentence1, sentence2)``; labels: float similarity (only their order matters).

    Example:
        >>> loss = CoSENTLoss(model=None)
        >>> e1, e2 = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(loss.compute_loss_from_embeddings([e1, e2], torch.tensor([1.0, 0.0])).item(), 6)
        0.0
    """

    def __init__(self, model: nn.Module, scale: float = 20.0,
                 similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_cos_sim) -> None:
        super().__init__(model)
        self.scale = scale
        self.similarity_fct = similarity_fct

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        labels = _check_labels(labels, embeddings[0].shape[0], self)
        scores = self.similarity_fct(embeddings[0], embeddings[1]).float() * self.scale
        diffs = scores[None, :] - scores[:, None]  # diffs[i, j] = s_j - s_i
        higher = (labels[:, None] > labels[None, :]).to(diffs.device)  # label_i > label_j
        diffs = diffs.masked_fill(~higher, float("-inf")).view(-1)
        return torch.logsumexp(torch.cat((diffs.new_zeros(1), diffs)), dim=0)


class CosineSimilarityLoss(_BiEncoderLoss):
    """``loss_fct(cos(u, v), label)``, mean squared error by default.

    Columns: ``(sentence1, sentence2)``; labels: target cosine (e.g. an STS score / 5).
    """

    def __init__(self, model: nn.Module, loss_fct: nn.Module | None = None,
                 cos_score_transformation: nn.Module | None = None) -> None:
        super().__init__(model)
        self.loss_fct = loss_fct if loss_fct is not None else nn.MSELoss()
        self.cos_score_transformation = cos_score_transformation if cos_score_transformation is not None else nn.Identity()

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        labels = _check_labels(labels, embeddings[0].shape[0], self)
        output = self.cos_score_transformation(torch.cosine_similarity(embeddings[0], embeddings[1]))
        return self.loss_fct(output, labels.float())


class _CrossEncoderLoss(nn.Module):
    one_label = True

    def __init__(self, model: nn.Module, activation_fn: nn.Module | None = None) -> None:
        super().__init__()
        labels = getattr(model, "num_labels", None)
        if self.one_label and labels not in (None, 1):
            raise InputValueError(
                f"{type(self).__name__} needs a cross-encoder with 1 output label; got one with {labels}. "
                "Use CrossEntropyLoss for several labels."
            )
        _hold(self, model)
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()

    def scores(self, columns: Sequence[Sequence[str]]) -> Tensor:
        _check_columns(columns, 2, self)
        return self.pair_scores(list(zip(columns[0], columns[1])))

    def pair_scores(self, pairs: list[tuple[str, str]]) -> Tensor:
        """The (activated) logits of ``pairs``: one per pair for a 1-label model, else ``(n, num_labels)``."""
        features = self.model.tokenize_pairs(pairs)
        device = self.model.device
        features = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in features.items()}
        logits = self.model.logits(features)
        return self.activation_fn(logits.view(-1) if self.one_label else logits)


class BinaryCrossEntropyLoss(_CrossEncoderLoss):
    """Binary cross-entropy on the logit of a 1-label cross-encoder; labels in [0, 1] (soft labels work).

    Args:
        model: The :class:`~st_plugins.CrossEncoder` being trained.
        activation_fn: Applied to the logits first (identity by default).
        pos_weight: Weight of positive examples (``nn.BCEWithLogitsLoss``).
    """

    def __init__(self, model: nn.Module, activation_fn: nn.Module | None = None, pos_weight: Tensor | None = None) -> None:
        super().__init__(model, activation_fn)
        self.bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def forward(self, columns: Sequence[Sequence[str]], labels: Tensor) -> Tensor:
        logits = self.scores(columns)
        return self.bce(logits, _check_labels(labels, logits.shape[0], self).float())


class CrossEntropyLoss(_CrossEncoderLoss):
    """Cross-entropy over the ``num_labels`` logits; labels are class indices."""

    one_label = False

    def forward(self, columns: Sequence[Sequence[str]], labels: Tensor) -> Tensor:
        logits = self.scores(columns)
        return nn.functional.cross_entropy(logits, _check_labels(labels, logits.shape[0], self).long())


class MSELoss(_CrossEncoderLoss):
    """Mean squared error between the (activated) logit and a float label, e.g. a teacher score."""

    def forward(self, columns: Sequence[Sequence[str]], labels: Tensor) -> Tensor:
        logits = self.scores(columns)
        return nn.functional.mse_loss(logits, _check_labels(labels, logits.shape[0], self).detach().float())


class ListwiseSoftmaxLoss(_CrossEncoderLoss):
    """Softmax cross-entropy over each query's candidates: the relevant one should outscore the rest.

    Columns: ``[queries, relevant, negative_1, ..., negative_k]`` (k >= 1); each row's k + 1
    candidates are scored with its query and the loss is ``-log softmax(scores)[relevant]``: the
    ranking objective of sentence-transformers' cross-encoder ``MultipleNegativesRankingLoss`` over
    the given candidates only, without its in-batch negatives (with ``activation_fn=nn.Sigmoid(),
    scale=10`` its loss over the same candidates). Labels are not used (give 0).

    Args:
        model: The 1-label :class:`~st_plugins.CrossEncoder` being trained.
        scale: Multiplies the (activated) logits before the softmax.
        activation_fn: Applied to the logits first (identity by default: raw logits rank best here).
    """

    def __init__(self, model: nn.Module, scale: float = 1.0, activation_fn: nn.Module | None = None) -> None:
        super().__init__(model, activation_fn)
        self.scale = scale

    def forward(self, columns: Sequence[Sequence[str]], labels: Tensor) -> Tensor:
        if len(columns) < 3:
            raise InputValueError(
                f"`columns` of {type(self).__name__} must hold a query, a relevant text and at least one negative "
                f"(3 or more text columns); got {len(columns)}."
            )
        rows, width = len(columns[0]), len(columns) - 1
        _check_labels(labels, rows, self)
        pairs = [(columns[0][i], columns[j][i]) for i in range(rows) for j in range(1, width + 1)]
        logits = self.pair_scores(pairs).view(rows, width) * self.scale
        return nn.functional.cross_entropy(logits.float(), torch.zeros(rows, dtype=torch.long, device=logits.device))
