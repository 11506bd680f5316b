"""The WikiQA reader and the question-answer reranker recipe (st_plugins.training.qa) on tiny data and models."""

from __future__ import annotations

import numpy as np
import pytest

from st_plugins.data import QaQuestion, read_wikiqa
from st_plugins.errors import DataNotFoundError, InputValueError
from st_plugins.training import qa
from tests.conftest import DATA


def test_read_wikiqa_groups_rows_by_question_and_keeps_bare_quotes(tiny_wikiqa_dir):
    questions = read_wikiqa(tiny_wikiqa_dir / "WikiQA-train.tsv")
    assert len(questions) == 24 and all(len(q.sentences) == len(q.labels) == 4 for q in questions)
    assert [q.qid for q in questions] == [f"Q0-{i}" for i in range(24)]  # file order
    assert sum(q.answered for q in questions) == 16 and all(sum(q.labels) == int(q.answered) for q in questions)
    assert questions[0].question.startswith('What "') and not questions[0].sentences[0].endswith("\r")


def test_read_wikiqa_missing_file_is_data_not_found(tmp_path):
    with pytest.raises(DataNotFoundError, match="WikiQA"):
        read_wikiqa(tmp_path / "WikiQA-train.tsv")
    with pytest.raises(DataNotFoundError, match="has no WikiQA-train.tsv; pass the WikiQA folder"):
        qa.read_wikiqa_folder(tmp_path)


def test_read_wikiqa_real_files_have_the_published_counts():
    """Counts from the corpus README: rows, questions, questions with an answer."""
    folder = DATA / "wikiqa"
    if not (folder / "WikiQA-train.tsv").is_file():
        pytest.skip(f"WikiQA not found at {folder}; set ST_PLUGINS_DATA to the folder holding wikiqa/")
    splits = qa.read_wikiqa_folder(folder)
    counts = {split: (sum(len(q.sentences) for q in qs), len(qs), sum(q.answered for q in qs)) for split, qs in splits.items()}
    assert counts == {"train": (20360, 2118, 873), "dev": (2733, 296, 126), "test": (6165, 633, 243)}


def test_evaluate_ranking_is_sklearn_average_precision_and_reciprocal_rank():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    questions = [QaQuestion(f"q{i}", f"question {i}", "t", tuple(f"s{i}-{j}" for j in range(n)),
                            tuple(int(x) for x in rng.random(n) < 0.3))
                 for i, n in enumerate(rng.integers(2, 25, size=40))]
    scores = {f"s{i}-{j}": float(rng.random()) for i, q in enumerate(questions) for j in range(len(q.sentences))}
    got = qa.evaluate_ranking(lambda pairs: [scores[s] for _, s in pairs], questions)
    answered = [q for q in questions if q.answered]
    want_ap = np.mean([average_precision_score(q.labels, [scores[s] for s in q.sentences]) for q in answered])
    ranks = [1 + sorted((-scores[s] for s in q.sentences)).index(min(-scores[s] for s, y in zip(q.sentences, q.labels) if y))
             for q in answered]  # rank of the best-scored answer (no ties: random floats)
    assert got["questions"] == len(answered) < len(questions)
    assert got["map"] == pytest.approx(want_ap, abs=1e-12)
    assert got["mrr"] == pytest.approx(np.mean([1 / r for r in ranks]), abs=1e-12)
    assert got["mrr@10"] == pytest.approx(np.mean([1 / r if r <= 10 else 0 for r in ranks]), abs=1e-12)


def test_evaluate_ranking_equals_the_reranking_evaluator(make_tiny_cross, tiny_wikiqa_dir):
    """Our figures and CrossEncoderRerankingEvaluator's on the same groups (MRR@10 and MAP)."""
    from st_plugins.core.cross_encoder import CrossEncoder
    from st_plugins.training.evaluators import CrossEncoderRerankingEvaluator

    model = CrossEncoder(str(make_tiny_cross(1)), device="cpu")
    questions = read_wikiqa(tiny_wikiqa_dir / "WikiQA-dev.tsv")
    ours = qa.evaluate_ranking(model.predict, questions)
    theirs = CrossEncoderRerankingEvaluator(qa.reranking_samples(questions))(model)
    assert ours["map"] == pytest.approx(theirs["map"], abs=1e-9) and ours["mrr@10"] == pytest.approx(theirs["mrr@10"], abs=1e-9)


def test_nearest_wrong_never_returns_the_questions_own_page(model, tiny_wikiqa_dir):
    questions = read_wikiqa(tiny_wikiqa_dir / "WikiQA-train.tsv")
    vectors = qa._embed(model, [t for q in questions for t in (q.question, *q.sentences)])
    extra = qa._nearest_wrong(vectors, questions, 3)
    assert [len(e) for e in extra] == [3] * len(questions)
    assert all(not set(e) & set(q.sentences) for q, e in zip(questions, extra))
    assert qa._nearest_wrong(vectors, questions, 0) == [[]] * len(questions)


@pytest.mark.parametrize("kwargs, match", [({"teacher_weight": 1.5}, "teacher_weight"),
                                           ({"hard_negatives": -1}, "hard_negatives")])
def test_train_qa_reranker_rejects_bad_settings(tiny_wikiqa_dir, tmp_path, kwargs, match):
    with pytest.raises(InputValueError, match=match):
        qa.train_qa_reranker(tiny_wikiqa_dir, tmp_path / "o", **kwargs)


def test_train_qa_reranker_on_tiny_data_saves_a_model_that_learns(tiny_wikiqa_dir, tiny_bi_dir, tmp_path):
    """A tiny model on the synthetic task (the answer shares the question's verb) beats the file's order."""
    from st_plugins.core.cross_encoder import CrossEncoder

    result = qa.train_qa_reranker(tiny_wikiqa_dir, tmp_path / "qa", base_model=str(tiny_bi_dir), epochs=8,
                                  learning_rate=3e-3, batch_size=16, hard_negatives=1, listwise=0, eval_steps=None,
                                  show_progress_bar=False)
    assert (result.path / "config.json").is_file() and result.steps == 8 * -(-result.train_examples // 16)
    assert result.train_examples == 16 * (4 + 1)  # the 16 answered questions: their page plus one nearest wrong sentence
    loaded = CrossEncoder(str(result.path), device="cpu")
    assert qa.evaluate_ranking(loaded.predict, read_wikiqa(tiny_wikiqa_dir / "WikiQA-test.tsv")) == pytest.approx(result.test)
    assert result.dev_map is not None and set(result.test) == {"map", "mrr", "mrr@10", "questions"}


def test_train_qa_reranker_listwise_groups_each_answer_with_its_negatives(tiny_wikiqa_dir, tiny_bi_dir, tmp_path):
    result = qa.train_qa_reranker(tiny_wikiqa_dir, tmp_path / "qa", base_model=str(tiny_bi_dir), epochs=2,
                                  learning_rate=1e-3, batch_size=16, listwise=3, eval_steps=None, show_progress_bar=False)
    assert result.train_examples == 16  # one per answer; 16 // (3 + 1) = 4 answers per step
    assert result.steps == 2 * 4


def test_listwise_examples_mix_the_page_and_other_pages():
    q = QaQuestion("q", "who?", "t", ("a", "b", "c", "d", "e"), (0, 1, 0, 0, 1))
    examples = qa._listwise_examples([q], [["x", "y", "z"]], 4, 2, seed=0)
    assert [e.texts[:2] for e in examples] == [("who?", "b"), ("who?", "e")]  # one example per answer
    assert all(set(e.texts[2:4]) <= {"a", "c", "d"} and e.texts[4:] == ("x", "y") for e in examples)
    [short] = qa._listwise_examples([QaQuestion("q", "who?", "t", ("a", "b"), (0, 1))], [["x", "y", "z"]], 4, 2, seed=0)
    assert short.texts[2:] == ("a", "x", "y", "z")  # a short page leaves its share to other pages
