"""Fuzzed inputs for ``st-plugins index`` and ``st-plugins search`` (``st_plugins.cli.main`` in-process, plus
two subprocess runs with command lines and file names that are not UTF-8).

Property: exit code 0 with the passages indexed once and the best passage by sentence-transformers' scores
printed first, or exit code 2 with one ``st-plugins <command>: error: ...`` line naming the flag (argparse's
own usage error for a value that is not a number); never a traceback.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.reliability.strategies import budget, surrogate_texts, valid_texts

pytest.importorskip("chromadb")
from st_plugins.cli import main  # noqa: E402
from st_plugins.indexing import read_passages  # noqa: E402

_runs = itertools.count()


def run(capsys, *argv: str) -> tuple[int | str, str, str]:
    """``(exit code, stdout, stderr)`` of ``st-plugins argv`` in this process."""
    try:
        code: int | str = main(list(argv))
    except SystemExit as exc:  # argparse: a flag value of the wrong type
        code = f"usage {exc.code}"
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def folder(tiny_bi):
    return tiny_bi[0].model_name_or_path


@budget(0.3)
@given(paragraphs=st.lists(valid_texts, min_size=1, max_size=4), max_words=st.integers(1, 40),
       batch_size=st.integers(1, 6), k=st.integers(1, 4), query=valid_texts)
@example(paragraphs=["# T\n\nHello\x00 world 🙂", "x" * 100_000, "漢字 " * 300], max_words=5, batch_size=2, k=3,
         query="hello")
def test_fuzz_index_then_search(capsys, tmp_path_factory, tiny_bi, folder, paragraphs, max_words, batch_size, k, query):
    """``index`` stores each passage once (a re-run adds none); ``search`` prints ``min(k, passages)`` hits, best
    first by the oracle's scores."""
    root = tmp_path_factory.mktemp(f"cli{next(_runs)}")
    (root / "docs").mkdir()
    (root / "docs" / "a.md").write_text("\n\n".join(paragraphs), encoding="utf-8")
    (root / "docs" / "b.txt").write_bytes(b"not utf-8: \xff\xfe \xed\xa0\x80 end")
    db, docs = str(root / "db"), str(root / "docs")
    passages = read_passages([docs], max_words=max_words)
    flags = ["--db", db, "--quiet", "--device", "cpu", "--model", folder, "--batch-size", str(batch_size),
             "--max-words", str(max_words)]
    code, out, err = run(capsys, "index", docs, *flags)
    assert code == 0 and "error" not in err, err
    unique, files = len({(p.text, p.source) for p in passages}), len({p.source for p in passages})
    assert f"Indexed {len(passages)} passages from {files} files" in out and f"{unique} new" in out
    assert f"0 new, {unique} already present" in run(capsys, "index", docs, *flags)[1]
    code, out, err = run(capsys, "search", query, "--db", db, "-k", str(k), "--device", "cpu")
    assert code == 0 and "error" not in err, err
    ranks = re.findall(r"^(\d+)\. similarity (-?\d+\.\d+)  (.+) \(passage (\d+)\)$", out, flags=re.M)
    assert [int(r[0]) for r in ranks] == list(range(1, min(k, unique) + 1))
    scores = [float(r[1]) for r in ranks]
    assert scores == sorted(scores, reverse=True)
    oracle = tiny_bi[1]
    sims = oracle.similarity(oracle.encode_query(query), oracle.encode_document([p.text for p in passages])).numpy()[0]
    assert abs(scores[0] - sims.max()) < 1e-3


@pytest.fixture(scope="module")
def db(tmp_path_factory, folder):
    root = tmp_path_factory.mktemp("cli_db")
    (root / "a.txt").write_text("A man is eating food.\n\nA monkey is playing drums.\n\nThe girl carries a baby.")
    argv = ["index", str(root / "a.txt"), "--db", str(root / "db"), "--model", folder, "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    return str(root / "db")


int_flag_values = st.sampled_from(["1", "3", "0", "-1", "x", "2.5", "", str(10**30), "1e3"])


@budget(0.8)
@given(query=st.one_of(valid_texts, surrogate_texts), k=int_flag_values, candidates=int_flag_values,
       rerank=st.booleans(), collection=st.sampled_from([None, "st_plugins", "nope", "a", "\ud800bc", ""]),
       device=st.sampled_from([None, "cpu", "bogus"]))
@example(query="\udcff", k="3", candidates="20", rerank=False, collection=None, device="cpu")  # argv not UTF-8
@example(query="q", k="3", candidates="20", rerank=False, collection="\ud800bc", device=None)  # was UnicodeEncodeError
@example(query="q", k="3", candidates="20", rerank=False, collection=None, device="bogus")  # was torch's RuntimeError
def test_fuzz_search_flags(capsys, db, query, k, candidates, rerank, collection, device):
    """Any flags: exit 0 with hits, or exit 2 with one error line naming what is wrong (``--rerank`` without the
    trained reranker on this machine says how to make it)."""
    argv = ["search", query, "--db", db, "-k", k, "--candidates", candidates] + (["--rerank"] if rerank else [])
    argv += (["--collection", collection] if collection is not None else []) + (["--device", device] if device else [])
    code, out, err = run(capsys, *argv)
    if code == 0:
        assert re.match(r"1\. (similarity|rerank) ", out) and "error" not in err
    elif code == "usage 2":
        assert "invalid int value" in err
    else:
        assert code == 2 and err.startswith("st-plugins search: error: ") and err.count("\n") == 1, err
        named = ("QUERY", "`-k`", "`--candidates`", "collection", "`device`", "--rerank")
        assert any(name in err for name in named), err


def _cli(*argv: bytes | str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "st_plugins.cli", *argv], capture_output=True, timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def test_cli_processes_with_bytes_that_are_not_utf8(tmp_path, folder):
    """A real process: a file whose name is not UTF-8 is indexed (its name stored readably), and a query that is
    not UTF-8 is refused naming ``QUERY`` (it was tokenizers' bare ``TypeError`` in a traceback)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    with open(os.path.join(os.fsencode(docs), b"caf\xe9.txt"), "wb") as f:
        f.write("Un caf\u00e9 noir, s'il vous pla\u00eet.".encode())
    db = str(tmp_path / "db")
    done = _cli("index", str(docs), "--db", db, "--model", folder, "--quiet", "--device", "cpu")
    assert done.returncode == 0 and b"Indexed 1 passages from 1 files" in done.stdout, done.stderr.decode()[-2000:]
    found = _cli("search", "coffee", "--db", db, "--device", "cpu")
    assert found.returncode == 0 and b"caf\\xe9.txt (passage 0)" in found.stdout, found.stderr.decode()[-2000:]
    refused = _cli("search", b"caf\xe9", "--db", db, "--device", "cpu")
    assert refused.returncode == 2 and refused.stderr.startswith(b"st-plugins search: error: `QUERY`"), refused.stderr
    assert b"Traceback" not in refused.stderr and refused.stdout == b""
