"""Benchmark inputs built from the STS benchmark files.

The data folder is ``$ST_PLUGINS_DATA``, else ``../shared/data`` beside the checkout (:data:`DEFAULT_DATA`);
it is passed to :func:`st_plugins.data.data_dir` explicitly.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from st_plugins.core.runtime.store import home_dir
from st_plugins.data import data_dir, read_sts

__all__ = ["DEFAULT_DATA", "data_folder", "short_sentences", "passages", "rank_task", "sts_test", "cross_encoder_folder"]

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_folder() -> Path:
    """``$ST_PLUGINS_DATA``, else :data:`DEFAULT_DATA`."""
    return data_dir(os.environ.get("ST_PLUGINS_DATA") or DEFAULT_DATA)


def _sts(name: str):
    path = data_folder() / "stsbenchmark" / name
    if not path.is_file():
        raise SystemExit(f"STS benchmark data not found at {path}; set ST_PLUGINS_DATA or lay out ../shared/data.")
    return read_sts(path)


def _train_sentences() -> list[str]:
    pairs = _sts("sts-train.csv")
    return list(dict.fromkeys([p.sentence1 for p in pairs] + [p.sentence2 for p in pairs]))


def short_sentences(n: int = 10_000) -> list[str]:
    """The first ``n`` distinct sentences of ``sts-train.csv`` (~12 words each)."""
    return _train_sentences()[:n]


def passages(tokenizer, n: int = 2_000, tokens: int = 256) -> list[str]:
    """``n`` passages of about ``tokens`` tokens, each made by joining consecutive STS sentences."""
    sentences, out, i = _train_sentences(), [], 0
    while len(out) < n:
        parts, length = [], 2
        while length < tokens:
            s = sentences[i % len(sentences)]
            parts.append(s)
            length += len(tokenizer.encode(s, add_special_tokens=False))
            i += 1
        out.append(" ".join(parts))
    return out


def rank_task(queries: int = 100, documents: int = 100, seed: int = 0) -> list[tuple[str, list[str]]]:
    """``queries`` STS sentences, each with ``documents`` passages of 60-100 words."""
    sentences = _train_sentences()
    rng = random.Random(seed)
    docs = []
    while len(docs) < documents:
        words, target = [], rng.randint(60, 100)
        while len(words) < target:
            words += rng.choice(sentences).split()
        docs.append(" ".join(words[:target]))
    return [(q, docs) for q in sentences[-queries:]]


def sts_test():
    """``(pairs, sentences)``: the STS test pairs and their distinct sentences."""
    pairs = _sts("sts-test.csv")
    return pairs, list(dict.fromkeys([p.sentence1 for p in pairs] + [p.sentence2 for p in pairs]))


def cross_encoder_folder(minilm: Path) -> Path:
    """A 1-label cross-encoder on all-MiniLM-L6-v2 with a fixed (seeded) head, saved once and reused.

    Only all-MiniLM-L6-v2 is available offline; speed does not depend on the head's training.
    """
    folder = home_dir() / "benchmarks" / "minilm-cross-encoder"
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm), num_labels=1)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(minilm)).save_pretrained(str(folder))
    (folder / "README.txt").write_text(json.dumps({"made_by": "benchmarks/workloads.py", "seed": 0}))
    return folder
