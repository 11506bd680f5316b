"""Banking77 intent classification: ``EmbeddingTransformer`` + ``LogisticRegression`` in one pipeline.

Run:  python examples/sklearn_classification.py                      (all 77 intents, ~13k texts: minutes on CPU)
      python examples/sklearn_classification.py --classes 10 --per-class 20     (a quick look)
Reads ``{train,test}.csv`` from ``--data`` (default: ``$ST_PLUGINS_DATA/banking77``).
Works offline: the model is the packaged all-MiniLM-L6-v2.
"""

from __future__ import annotations

import argparse
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline

from st_plugins.data import data_dir, read_banking77
from st_plugins.sklearn import EmbeddingTransformer


def load(folder: Path, split: str, classes: int | None, per_class: int | None) -> tuple[list[str], list[str]]:
    """Texts and labels of one split, keeping the first ``classes`` intents and ``per_class`` texts of each."""
    texts, labels = read_banking77(folder / f"{split}.csv")
    kept = sorted(set(labels))[:classes]
    seen: Counter = Counter()
    rows = []
    for i, label in enumerate(labels):
        if label in kept and (per_class is None or seen[label] < per_class):
            seen[label] += 1
            rows.append(i)
    return [texts[i] for i in rows], [labels[i] for i in rows]


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="folder with train.csv, test.csv (default: $ST_PLUGINS_DATA/banking77)")
    parser.add_argument("--classes", type=int, default=None, help="use the first N intents (default: all 77)")
    parser.add_argument("--per-class", type=int, default=None, help="at most N texts per intent and split")
    args = parser.parse_args(argv)
    folder = args.data or data_dir() / "banking77"

    train_texts, train_labels = load(folder, "train", args.classes, args.per_class)
    test_texts, test_labels = load(folder, "test", args.classes, args.per_class)
    print(f"{len(train_texts)} training texts, {len(test_texts)} test texts, {len(set(train_labels))} intents")

    pipe = make_pipeline(EmbeddingTransformer(), LogisticRegression(max_iter=1000))
    pipe.fit(train_texts, train_labels)
    predicted = pipe.predict(test_texts)
    accuracy = float(np.mean(predicted == np.array(test_labels)))
    print(f"test accuracy: {accuracy:.4f}")

    names = pipe.classes_
    matrix = confusion_matrix(test_labels, predicted, labels=names)
    np.fill_diagonal(matrix, 0)
    print("most confused intents (true -> predicted: count):")
    for flat in np.argsort(matrix, axis=None)[::-1][:5]:
        true, guess = np.unravel_index(flat, matrix.shape)
        if matrix[true, guess]:
            print(f"  {names[true]} -> {names[guess]}: {matrix[true, guess]}")

    # The fitted pipeline pickles without the model's weights: it finds the model again on first use.
    print(f"pickled pipeline: {len(pickle.dumps(pipe)) / 1024:.0f} KB (the logistic regression; no model weights)")
    return accuracy


if __name__ == "__main__":
    main()
