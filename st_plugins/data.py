"""Readers for the public evaluation data beside the checkout (never copied into the repo).

The folder is ``$ST_PLUGINS_DATA`` when set, else ``../shared/data`` next to the project checkout.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["data_dir", "StsPair", "read_sts", "read_banking77"]


def data_dir() -> Path:
    """The evaluation data folder (may not exist: callers skip or explain)."""
    env = os.environ.get("ST_PLUGINS_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class StsPair:
    sentence1: str
    sentence2: str
    score: float  # 0-5


def read_sts(path: str | os.PathLike) -> list[StsPair]:
    """Read an STS benchmark file: tab-separated, no quoting; fields 4, 5, 6 (score, s1, s2).

    Raises:
        FileNotFoundError: The file does not exist.
    """
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 7:
                pairs.append(StsPair(fields[5], fields[6], float(fields[4])))
    return pairs


def read_banking77(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Read a Banking77 CSV (``text,category``) into ``(texts, labels)``."""
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            texts.append(row["text"])
            labels.append(row["category"])
    return texts, labels
