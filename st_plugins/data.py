"""Readers for the public evaluation data (STS benchmark, Banking77, WikiQA), which never ships with st_plugins.

The library reads the folder it is given: an argument (``--data DIR`` on the command line), else
``$ST_PLUGINS_DATA``. That folder holds ``stsbenchmark/sts-{train,dev,test}.csv`` and
``banking77/{train,test}.csv`` and ``wikiqa/WikiQA-{train,dev,test}.tsv``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from st_plugins.errors import DataNotFoundError

__all__ = ["data_dir", "read_splits", "StsPair", "read_sts", "read_banking77", "QaQuestion", "read_wikiqa"]

_HOW = "pass the data folder (--data DIR on the command line) or set ST_PLUGINS_DATA to it"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The evaluation data folder: ``path``, else ``$ST_PLUGINS_DATA`` (it may not exist: readers say so).

    Raises:
        DataNotFoundError: ``path`` is ``None`` and ``ST_PLUGINS_DATA`` is unset.

    Example:
        >>> data_dir("/data/eval").as_posix()
        '/data/eval'
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("ST_PLUGINS_DATA")
    if env:
        return Path(env).expanduser()
    raise DataNotFoundError(f"No evaluation data folder was given and ST_PLUGINS_DATA is not set; {_HOW} "
                            "(the folder holding stsbenchmark/, banking77/ and wikiqa/).")


def read_splits(folder: str | os.PathLike | None, name: str, pattern: str, what: str, reader) -> dict[str, list]:
    """``{"train", "dev"[, "test"]}`` read with ``reader`` from ``folder / pattern.format(split=...)``.

    Args:
        folder: The data set's folder (default: ``data_dir() / name``).
        name: The data set's folder name under ``$ST_PLUGINS_DATA`` (e.g. ``"wikiqa"``).
        pattern: File name with a ``{split}`` field (e.g. ``"WikiQA-{split}.tsv"``).
        what: The data set's name in messages (e.g. ``"WikiQA"``).

    Raises:
        DataNotFoundError: No folder given and ``ST_PLUGINS_DATA`` unset, or the train or dev file is
            missing (the message shows the expected layout); the test file is optional.
    """
    root = Path(folder) if folder is not None else data_dir() / name
    splits = {}
    for split in ("train", "dev", "test"):
        path = root / pattern.format(split=split)
        if path.is_file():
            splits[split] = reader(path)
        elif split != "test":
            files = ", ".join(pattern.format(split=s) for s in ("train", "dev"))
            raise DataNotFoundError(
                f"`data` folder {str(root)!r} has no {path.name}; pass the {what} folder ({files}, optional "
                f"{pattern.format(split='test')}) with --data DIR, or set ST_PLUGINS_DATA to the folder holding {name}/."
            )
    return splits


def _open(path: str | os.PathLike, what: str, **kwargs) -> IO[str]:
    """``open(path)`` for reading, or :class:`DataNotFoundError` naming the path and how to point at the data."""
    try:
        return open(path, encoding="utf-8", **kwargs)
    except FileNotFoundError:
        raise DataNotFoundError(f"{what} file {os.fspath(path)!r} does not exist; {_HOW}.") from None


@dataclass(frozen=True)
class StsPair:
    sentence1: str
    sentence2: str
    score: float  # 0-5


def read_sts(path: str | os.PathLike) -> list[StsPair]:
    """Read an STS benchmark file: tab-separated, no quoting; fields 4, 5, 6 (score, s1, s2).

    Raises:
        DataNotFoundError: The file does not exist.
    """
    pairs = []
    with _open(path, "STS benchmark") as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 7:
                pairs.append(StsPair(fields[5], fields[6], float(fields[4])))
    return pairs


def read_banking77(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Read a Banking77 CSV (``text,category``) into ``(texts, labels)``.

    Raises:
        DataNotFoundError: The file does not exist.
    """
    texts, labels = [], []
    with _open(path, "Banking77", newline="") as fh:
        for row in csv.DictReader(fh):
            texts.append(row["text"])
            labels.append(row["category"])
    return texts, labels


@dataclass(frozen=True)
class QaQuestion:
    """One WikiQA question with the summary sentences of its Wikipedia page; ``labels[i]`` is 1 for an answer."""

    qid: str
    question: str
    title: str
    sentences: tuple[str, ...]
    labels: tuple[int, ...]

    @property
    def answered(self) -> bool:
        """Whether at least one candidate answers the question (the standard evaluation keeps only these)."""
        return any(self.labels)


def read_wikiqa(path: str | os.PathLike) -> list[QaQuestion]:
    """Read a WikiQA TSV (header ``QuestionID Question DocumentID DocumentTitle SentenceID Sentence Label``).

    Rows are grouped by question in file order; the file is tab-separated with no quoting.

    Raises:
        DataNotFoundError: The file does not exist.
    """
    groups: dict[str, list[list[str]]] = {}
    with _open(path, "WikiQA", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows, None)
        for row in rows:
            if len(row) >= 7:
                groups.setdefault(row[0], []).append(row)
    return [QaQuestion(qid, rows[0][1], rows[0][3], tuple(r[5] for r in rows), tuple(int(r[6]) for r in rows))
            for qid, rows in groups.items()]
