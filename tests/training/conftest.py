"""Fixtures for the training tests: tiny bi-encoder and cross-encoder folders, a tiny STS folder."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests import factories

WORDS = (["A man", "A woman", "A dog", "The child", "A chef", "Two pilots"],
         ["is eating", "is reading", "is riding", "is cooking", "is playing"],
         ["pasta.", "a book.", "a horse.", "bread.", "the guitar.", "in the park."])


def _parts(rng: random.Random) -> tuple[str, ...]:
    return tuple(rng.choice(options) for options in WORDS)


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(_parts(rng)) for _ in range(n)]


def sts_rows(n: int, seed: int) -> list[tuple[str, str, float]]:
    """Pairs scored 0-5 by how many of (subject, verb, object) they share: learnable by a tiny model."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = _parts(rng), _parts(rng)
        rows.append((" ".join(a), " ".join(b), 5.0 * sum(x == y for x, y in zip(a, b)) / 3))
    return rows


@pytest.fixture(scope="session")
def st_modules():
    """sentence-transformers' modules, losses and cross-encoder classes (the oracle)."""
    pytest.importorskip("sentence_transformers")
    import sentence_transformers.cross_encoder as cross
    import sentence_transformers.cross_encoder.evaluation as cross_evaluation
    import sentence_transformers.cross_encoder.losses as cross_losses
    import sentence_transformers.sentence_transformer.evaluation as evaluation
    import sentence_transformers.sentence_transformer.losses as losses
    import sentence_transformers.sentence_transformer.modules as modules

    return {"modules": modules, "losses": losses, "evaluation": evaluation, "cross": cross,
            "cross_losses": cross_losses, "cross_evaluation": cross_evaluation}


@pytest.fixture(scope="session")
def make_tiny_cross():
    """``make(num_labels) -> folder``: a tiny random BertForSequenceClassification with MiniLM's tokenizer
    (seeded with ``num_labels``, as the training thresholds were measured)."""
    return lambda num_labels=1: factories.cross_folder("bert", num_labels, seed=num_labels)


@pytest.fixture()
def tiny_sts_dir(tmp_path) -> Path:
    """An STS-benchmark-style folder (tab-separated, score in field 4) with 64/24/24 synthetic pairs."""
    for split, n, seed in (("train", 64, 0), ("dev", 24, 10), ("test", 24, 20)):
        lines = [f"main\tsyn\t2024\t{i:04d}\t{s:.3f}\t{a}\t{b}" for i, (a, b, s) in enumerate(sts_rows(n, seed))]
        (tmp_path / f"sts-{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def wikiqa_rows(questions: int, seed: int) -> list[list[str]]:
    """WikiQA-style rows: each question asks what someone does; its page has 4 sentences, the one sharing the verb answers.

    Every third question has no answer on its page (as most WikiQA questions), like the real files.
    """
    rng = random.Random(seed)
    rows = []
    for q in range(questions):
        subject, verb, _ = _parts(rng)
        answered = q % 3 != 2
        verbs = [verb] if answered else []
        verbs += rng.sample([v for v in WORDS[1] if v != verb], 4 - len(verbs))
        rng.shuffle(verbs)
        for i, v in enumerate(verbs):
            sentence = f'{subject} {v} {rng.choice(WORDS[2])}'
            rows.append([f"Q{seed}-{q}", f'What "{verb.split()[1]}" {subject.lower()}?', f"D{seed}-{q}", subject,
                         f"D{seed}-{q}-{i}", sentence, str(int(v == verb))])
    return rows


@pytest.fixture()
def tiny_wikiqa_dir(tmp_path) -> Path:
    """A WikiQA-style folder (header, tab-separated, CRLF, quotes left bare) with 24/9/9 synthetic questions."""
    header = ["QuestionID", "Question", "DocumentID", "DocumentTitle", "SentenceID", "Sentence", "Label"]
    for split, n, seed in (("train", 24, 0), ("dev", 9, 10), ("test", 9, 20)):
        lines = ["\t".join(row) for row in [header] + wikiqa_rows(n, seed)]
        (tmp_path / f"WikiQA-{split}.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return tmp_path
