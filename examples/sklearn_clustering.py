"""Banking77 intent discovery: cluster the test texts with ``EmbeddingTransformer`` + ``KMeans``.

Run:  python examples/sklearn_clustering.py                        (all 3080 test texts, 77 clusters)
      python examples/sklearn_clustering.py --classes 10 --per-class 20 --plot clusters.png
Prints the V-measure against the true intents and a few texts per cluster; ``--plot`` saves a 2-D
map of the clusters (PCA of the embeddings; needs matplotlib).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import v_measure_score
from sklearn.pipeline import make_pipeline

from st_plugins.data import data_dir, read_banking77
from st_plugins.sklearn import EmbeddingTransformer


def load(folder: Path, classes: int | None, per_class: int | None) -> tuple[list[str], list[str]]:
    """Test texts and labels, keeping the first ``classes`` intents and ``per_class`` texts of each."""
    texts, labels = read_banking77(folder / "test.csv")
    kept = sorted(set(labels))[:classes]
    seen: Counter = Counter()
    rows = []
    for i, label in enumerate(labels):
        if label in kept and (per_class is None or seen[label] < per_class):
            seen[label] += 1
            rows.append(i)
    return [texts[i] for i in rows], [labels[i] for i in rows]


def plot(vectors: np.ndarray, clusters: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    xy = PCA(n_components=2, random_state=0).fit_transform(vectors)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(xy[:, 0], xy[:, 1], c=clusters, cmap="tab20", s=8)
    ax.set(title="Banking77 test texts: KMeans clusters (PCA of the embeddings)", xticks=[], yticks=[])
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"saved {path}")


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder with test.csv (default: $ST_PLUGINS_DATA/banking77)")
    parser.add_argument("--classes", type=int, default=None, help="use the first N intents (default: all 77)")
    parser.add_argument("--per-class", type=int, default=None, help="at most N texts per intent")
    parser.add_argument("--plot", type=Path, default=None, help="save a 2-D map of the clusters to this PNG")
    args = parser.parse_args(argv)

    texts, labels = load(args.data or data_dir() / "banking77", args.classes, args.per_class)
    n_clusters = len(set(labels))
    # Normalized vectors: KMeans' Euclidean distance then follows cosine similarity.
    pipe = make_pipeline(EmbeddingTransformer(normalize_embeddings=True), KMeans(n_clusters, n_init=10, random_state=0))
    clusters = pipe.fit_predict(texts)
    score = v_measure_score(labels, clusters)
    print(f"{len(texts)} texts, {n_clusters} clusters, V-measure vs the intents: {score:.4f}")

    for cluster in range(min(n_clusters, 3)):
        members = [t for t, c in zip(texts, clusters) if c == cluster]
        intents = Counter(label for label, c in zip(labels, clusters) if c == cluster).most_common(1)
        print(f"cluster {cluster} ({len(members)} texts, mostly {intents[0][0]}): {members[:2]}")
    if args.plot is not None:
        plot(pipe[0].transform(texts), clusters, args.plot)
    return score


if __name__ == "__main__":
    main()
