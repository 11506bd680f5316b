"""The question-answer reranker recipe on WikiQA: a cross-encoder that ranks a page's sentences for a question.

It fine-tunes the packaged all-MiniLM-L6-v2 into a cross-encoder on WikiQA-train (question,
sentence, label) with hard negatives, keeps the checkpoint with the best WikiQA-dev MAP and reports
MAP and MRR on the standard test questions (those with at least one answer). From a shell::

    st-plugins train-reranker --task qa --data DATA/wikiqa

Without ``data`` it reads ``$ST_PLUGINS_DATA/wikiqa`` (:func:`st_plugins.data.data_dir`). WikiQA is
under the Microsoft Research Data License Agreement (research and technology development use
only), and a model trained on it carries that restriction.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from st_plugins.data import QaQuestion, read_splits, read_wikiqa
from st_plugins.errors import InputValueError
from st_plugins.training.named import qa_reranker_dir

__all__ = ["QaResult", "read_wikiqa_folder", "reranking_samples", "evaluate_ranking", "bi_encoder_scorer",
           "train_qa_reranker", "QUICK_QUESTIONS"]

BASE_MODEL = "all-MiniLM-L6-v2"
#: The recipe's defaults (test MAP / MRR and time in the README and in :func:`train_qa_reranker`).
EPOCHS, LEARNING_RATE, HARD_NEGATIVES, TEACHER_WEIGHT, EVAL_STEPS, LISTWISE, OTHER_PAGES = 2, 5e-5, 3, 0.3, 100, 7, 0
#: ``quick``: answered training questions used, one epoch.
QUICK_QUESTIONS = 600


@dataclass
class QaResult:
    """Where the model went and how it ranked WikiQA (MAP, MRR over answered questions); times in seconds."""

    path: Path
    dev_map: float | None
    test: dict[str, float]
    wall_seconds: float
    cpu_seconds: float
    steps: int
    train_examples: int  # pairs when pointwise, answers (each with its negatives) when listwise


def read_wikiqa_folder(folder: str | os.PathLike | None) -> dict[str, list[QaQuestion]]:
    """Read ``WikiQA-train.tsv``, ``WikiQA-dev.tsv`` and (if present) ``WikiQA-test.tsv`` from ``folder``.

    Args:
        folder: The WikiQA folder (default: ``$ST_PLUGINS_DATA/wikiqa``).

    Raises:
        DataNotFoundError: No folder given and ``ST_PLUGINS_DATA`` unset, or the train or dev file is
            missing (the message shows the expected layout).
    """
    return read_splits(folder, "wikiqa", "WikiQA-{split}.tsv", "WikiQA", read_wikiqa)


def reranking_samples(questions: list[QaQuestion]) -> list[dict[str, Any]]:
    """The answered questions as :class:`~st_plugins.training.CrossEncoderRerankingEvaluator` samples.

    Example:
        >>> q = QaQuestion("Q1", "who?", "Page", ("a", "b", "c"), (0, 1, 0))
        >>> reranking_samples([q])
        [{'query': 'who?', 'positive': ['b'], 'negative': ['a', 'c']}]
    """
    return [{"query": q.question, "positive": [s for s, y in zip(q.sentences, q.labels) if y],
             "negative": [s for s, y in zip(q.sentences, q.labels) if not y]} for q in questions if q.answered]


def evaluate_ranking(scorer, questions: list[QaQuestion]) -> dict[str, float]:
    """MAP, MRR (full list) and MRR@10 of ranking each answered question's candidates by ``scorer(pairs)``.

    ``scorer`` maps a list of ``(question, sentence)`` pairs to scores (a cross-encoder's ``predict``,
    or :func:`bi_encoder_scorer`).
    """
    import numpy as np

    from st_plugins.training import metrics as m

    answered = [q for q in questions if q.answered]
    scores = np.asarray(scorer([(q.question, s) for q in answered for s in q.sentences]), dtype=np.float64)
    ap, rr, rr10, offset = [], [], [], 0
    for q in answered:
        own, offset = scores[offset: offset + len(q.sentences)], offset + len(q.sentences)
        ap.append(m.average_precision(list(q.labels), own))
        rr.append(m.mrr_at_k(list(q.labels), own, len(q.sentences)))
        rr10.append(m.mrr_at_k(list(q.labels), own, 10))
    return {"map": float(np.mean(ap)), "mrr": float(np.mean(rr)), "mrr@10": float(np.mean(rr10)),
            "questions": float(len(answered))}


def bi_encoder_scorer(model, batch_size: int = 128):
    """``scorer(pairs)`` giving the cosine of a bi-encoder's question and sentence vectors."""

    def scorer(pairs):
        vectors = _embed(model, [t for pair in pairs for t in pair], batch_size)
        return [float(vectors[a] @ vectors[b]) for a, b in pairs]

    return scorer


def _embed(model, texts: list[str], batch_size: int = 128) -> dict[str, Any]:
    """Each distinct text with its unit-length vector (one encode call for everything the recipe looks up)."""
    unique = sorted(set(texts))
    return dict(zip(unique, model.encode(unique, batch_size=batch_size, normalize_embeddings=True)))


def _nearest_wrong(vectors: dict[str, Any], questions: list[QaQuestion], k: int) -> list[list[str]]:
    """Per question, the ``k`` sentences of *other* pages nearest to it by the bi-encoder (never its own).

    ``vectors`` holds every question and sentence (see :func:`_embed`).
    """
    import numpy as np

    if k <= 0:
        return [[] for _ in questions]
    pool = sorted({s for q in questions for s in q.sentences})
    index = {s: i for i, s in enumerate(pool)}
    sims = np.stack([vectors[q.question] for q in questions]) @ np.stack([vectors[s] for s in pool]).T
    for row, q in enumerate(questions):
        sims[row, [index[s] for s in q.sentences]] = -np.inf
    top = np.argsort(-sims, axis=1)[:, :k]
    return [[pool[j] for j in row] for row in top]


def _calibrated_teacher(vectors: dict[str, Any], pairs: list[tuple[str, str]], labels: list[int]) -> list[float]:
    """The bi-encoder's cosine on ``pairs`` mapped to P(answer) by a 1-D logistic fit on the gold labels."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    cos = np.array([float(vectors[a] @ vectors[b]) for a, b in pairs], dtype=np.float64).reshape(-1, 1)
    fit = LogisticRegression(C=1e4).fit(cos, np.asarray(labels))
    return fit.predict_proba(cos)[:, 1].tolist()


def train_qa_reranker(data: str | os.PathLike | None = None, out: str | os.PathLike | None = None, *,
                      base_model: str = BASE_MODEL, epochs: int = EPOCHS, batch_size: int = 32,
                      learning_rate: float = LEARNING_RATE, warmup_ratio: float = 0.1, max_length: int = 128,
                      seed: int = 12, quick: bool = False, hard_negatives: int = HARD_NEGATIVES,
                      teacher_weight: float = TEACHER_WEIGHT, answered_only: bool = True, eval_steps: int | None = EVAL_STEPS,
                      bf16: bool | None = None, freeze_embeddings: bool = True, listwise: int = LISTWISE,
                      other_pages: int = OTHER_PAGES,
                      device: str | None = "cpu",
                      show_progress_bar: bool = True) -> QaResult:
    """Fine-tune ``base_model``'s transformer plus a fresh 1-label head into a question-answer reranker.

    By default the objective is listwise (``listwise`` negatives): each answer of an answered
    training question competes with ``listwise`` wrong sentences, first those of its own page,
    then the sentences of other pages the bi-encoder ranks nearest to the question, under a softmax
    cross-entropy (:class:`~st_plugins.training.losses.ListwiseSoftmaxLoss`), ``batch_size // (listwise + 1)``
    answers per step. With ``listwise=0`` it is pointwise instead: every (question, page sentence)
    pair plus ``hard_negatives`` nearest wrong sentences of other pages, binary cross-entropy on
    labels ``(1 - teacher_weight) * gold + teacher_weight * teacher``, the teacher being the
    bi-encoder's cosine calibrated to P(answer), pairs batched by token length. Measured on WikiQA
    test (README): listwise 2 epochs MAP 0.760, pointwise 3 epochs 0.751. AdamW with warm-up and
    linear decay; dev MAP every ``eval_steps`` steps and after each epoch, the best checkpoint kept.

    Args:
        data: WikiQA folder (default: ``$ST_PLUGINS_DATA/wikiqa``).
        out: Output folder (default: ``$ST_PLUGINS_HOME/qa-reranker`` or the user cache dir; that one
            loads as ``"st-plugins/qa-reranker"``).
        quick: A short run for CI: one epoch on 600 answered training questions.
        batch_size: Pairs per step (32: four answers with seven negatives each when listwise).
        hard_negatives: Pointwise: nearest wrong sentences of other pages added per question (0: none).
        teacher_weight: Pointwise: share of the bi-encoder teacher in each label, in [0, 1] (0: gold only).
        listwise: Negatives per answer of the listwise objective; 0 trains pointwise.
        answered_only: Train on the questions that have an answer only (the others' pages hold no
            positive and teach little but "no").
        bf16: bfloat16 autocast in the forward pass (default: on when the CPU has AVX-512 BF16 or AMX).
        freeze_embeddings: Keep the word embeddings fixed (a sixth of the weights; faster steps, and
            less drift on a small training set).

    Returns:
        A :class:`QaResult`; ``test`` holds ``map``, ``mrr``, ``mrr@10`` (empty without the test file).

    Raises:
        InputValueError: ``teacher_weight`` outside [0, 1], or ``hard_negatives`` or ``listwise`` negative.
        DataNotFoundError: The WikiQA files are not where ``data`` points (see :func:`read_wikiqa_folder`).
    """
    from st_plugins.core.bi_encoder import SentenceTransformer
    from st_plugins.training.evaluators import CrossEncoderRerankingEvaluator
    from st_plugins.training.losses import BinaryCrossEntropyLoss, ListwiseSoftmaxLoss
    from st_plugins.training.recipes import _cross_encoder_from_bi_encoder, pair_token_lengths
    from st_plugins.training.trainer import Example, Trainer, TrainingArguments

    if not 0.0 <= teacher_weight <= 1.0:
        raise InputValueError(f"`teacher_weight` must be in [0, 1]; got {teacher_weight!r}.")
    for name, value in (("hard_negatives", hard_negatives), ("listwise", listwise), ("other_pages", other_pages)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputValueError(f"`{name}` must be a non-negative int; got {value!r}.")
    wall, cpu = time.perf_counter(), time.process_time()
    splits = read_wikiqa_folder(data)
    out_dir = Path(out) if out is not None else qa_reranker_dir()
    train = [q for q in splits["train"] if q.answered or not answered_only]
    if quick:
        answered = [q for q in train if q.answered]
        train = random.Random(seed).sample(answered, min(QUICK_QUESTIONS, len(answered)))
        epochs = 1
    vectors = _embed(SentenceTransformer(base_model, device=device), [t for q in train for t in (q.question, *q.sentences)])
    pairs = [(q.question, s) for q in train for s in q.sentences]
    gold = [y for q in train for y in q.labels]
    nearest = _nearest_wrong(vectors, train, max(hard_negatives, listwise))
    for q, extra in zip(train, nearest):
        pairs += [(q.question, s) for s in extra[:hard_negatives]]
        gold += [0] * len(extra[:hard_negatives])
    labels = [float(y) for y in gold]
    if teacher_weight and not listwise:
        teacher = _calibrated_teacher(vectors, pairs, gold)
        labels = [(1 - teacher_weight) * y + teacher_weight * t for y, t in zip(labels, teacher)]
    del vectors
    if bf16 is None:
        bf16 = _cpu_has_fast_bf16() and device in (None, "cpu")
    model = _cross_encoder_from_bi_encoder(base_model, seed, max_length, device)
    if freeze_embeddings:
        model.model.get_input_embeddings().weight.requires_grad_(False)
    if listwise:
        examples, loss = _listwise_examples(train, nearest, listwise, other_pages, seed), ListwiseSoftmaxLoss(model)
        length_fn = None
    else:
        examples = [Example(p, y) for p, y in zip(pairs, labels)]
        loss, length_fn = BinaryCrossEntropyLoss(model), pair_token_lengths(model.tokenizer, examples)
    dev = CrossEncoderRerankingEvaluator(reranking_samples(splits["dev"]), name="wikiqa-dev", batch_size=64)
    dev.primary_metric = "map"
    per_step = max(1, batch_size // (listwise + 1)) if listwise else batch_size  # questions or pairs per step
    args = TrainingArguments(epochs=epochs, batch_size=per_step, learning_rate=learning_rate, warmup_ratio=warmup_ratio,
                             seed=seed, group_by_length=True, eval_steps=eval_steps, bf16=bf16,
                             show_progress_bar=show_progress_bar)
    trainer = Trainer(model, loss, examples, args, dev, length_fn)
    result = trainer.train(out_dir)
    test = {}
    if "test" in splits:
        test = evaluate_ranking(lambda p: model.predict(p, batch_size=64, show_progress_bar=False), splits["test"])
    _write_record(out_dir, {"recipe": "st-plugins train-reranker --task qa", "quick": quick, "epochs": epochs,
                            "listwise": listwise, "other_pages": other_pages, "learning_rate": learning_rate,
                            "seed": seed, "train_examples": len(examples), "dev_map": result.best_score,
                            "test": test})
    return QaResult(out_dir, result.best_score, test, time.perf_counter() - wall, time.process_time() - cpu,
                    result.steps, len(examples))


def _listwise_examples(questions: list[QaQuestion], nearest: list[list[str]], k: int, other_pages: int, seed: int) -> list:
    """One example per answer: ``(question, answer, k negatives)``.

    Of the negatives, ``other_pages`` are the nearest sentences of other pages (what a retriever
    over many pages puts beside the answer) and the rest are wrong sentences of the question's own
    page, drawn at random; a short page leaves its share to other pages.
    """
    from st_plugins.training.trainer import Example

    rng = random.Random(seed)
    out = []
    for q, extra in zip(questions, nearest):
        wrong = [s for s, y in zip(q.sentences, q.labels) if not y]
        for answer in (s for s, y in zip(q.sentences, q.labels) if y):
            page = rng.sample(wrong, min(len(wrong), k - min(other_pages, k)))
            out.append(Example((q.question, answer, *(page + extra)[:k]), 0.0))
    return out


RECORD = "st_plugins_recipe.json"


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    """What made the model and how it scored, beside its weights (:data:`RECORD`; loaders ignore it)."""
    import json

    (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def read_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The recipe record a model folder holds, or ``None`` (a model not made by this recipe)."""
    import json

    path = Path(folder) / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bfloat16 matrix products natively (AVX-512 BF16 or AMX), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
