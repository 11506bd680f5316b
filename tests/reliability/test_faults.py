"""Faults, with real components: ``st-plugins index`` killed (SIGKILL) mid-run and run again, and a real
``chroma run`` server killed (SIGKILL) while :func:`st_plugins.indexing.index_documents` writes into it.

Each ends with every text in the collection exactly once: the ids and documents equal the input, the count
equals the number of texts, no document twice, and the stored vectors are the model's. A killed server is
one :class:`~st_plugins.errors.StoreUnavailableError` that says what to do (start it again, re-run), with
no HTTP client exception chained to it.

The faults are real: a SIGKILL of the indexing process once the persisted collection (polled from this
process) holds some but not all passages; a SIGKILL of the server at a chosen point of the write loop
(a thin wrapper around the real collection fires it before or after a given call), or from a thread
that polls the server's count through a second client, so that it lands wherever the requests are.
Run with ``-s`` to see the counts (faults injected, documents checked).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")

from chromadb.errors import NotFoundError  # noqa: E402

from st_plugins.chroma import open_collection  # noqa: E402
from st_plugins.errors import StoreUnavailableError  # noqa: E402
from st_plugins.indexing import content_id, index_documents, read_passages  # noqa: E402
from tests.conftest import ChromaServer  # noqa: E402

#: What this module did, printed by each test (``-s``): SIGKILLs sent, and texts checked to be there once.
COUNTS = {"faults": 0, "documents": 0}
_WORDS = ("river", "mountain", "violin", "harbor", "pasta", "garden", "rocket", "library", "winter", "ocean", "cat")


def _sentences(n: int, kind: str) -> list[str]:
    """``n`` distinct one-sentence texts."""
    return [f"{kind} {i} is about the {_WORDS[i % 11]} and the {_WORDS[(7 * i + 3) % 11]}." for i in range(n)]


def _exactly_once(collection, expected: dict[str, str], model, metadatas: dict[str, dict] | None = None) -> None:
    """Every id of ``expected`` present once with its text (and metadata), nothing else, no document twice, the
    stored vectors equal to the model's, and the vector index answering for them."""
    assert collection.count() == len(expected)
    got = collection.get(include=["documents", "embeddings", "metadatas"])
    assert len(got["ids"]) == len(set(got["ids"])) == len(expected)
    assert dict(zip(got["ids"], got["documents"])) == expected
    assert len(set(got["documents"])) == len(got["documents"])  # no document stored twice (under another id)
    if metadatas is not None:
        assert dict(zip(got["ids"], got["metadatas"])) == metadatas
    ids = list(expected)
    order = {value: i for i, value in enumerate(got["ids"])}
    stored = np.asarray(got["embeddings"])[[order[i] for i in ids]]
    vectors = model.encode_document([expected[i] for i in ids])
    assert np.abs(stored - vectors).max() <= 1e-5
    sample = ids[:: max(1, len(ids) // 50)]  # the vector index survived the fault: a stored vector finds itself
    hits = collection.query(query_embeddings=stored[[ids.index(i) for i in sample]], n_results=1, include=["distances"])
    assert [h[0] for h in hits["ids"]] == sample and max(d[0] for d in hits["distances"]) <= 1e-4
    COUNTS["documents"] += len(expected)


def _report(what: str) -> None:
    print(f"\n{what} [module so far: {COUNTS['faults']} faults injected, {COUNTS['documents']} documents checked]")


# ----------------------------------------------------------------------------- (a) the index command killed
PASSAGES = 1200


def _write_corpus(folder: Path, texts: list[str], files: int) -> None:
    """``files`` .txt files, one sentence per paragraph (with ``--max-words 1``, one passage each)."""
    folder.mkdir()
    for f in range(files):
        (folder / f"part{f}.txt").write_text("\n\n".join(texts[f::files]) + "\n", encoding="utf-8")


def _count(client, name: str) -> int:
    try:
        return client.get_collection(name).count()
    except NotFoundError:  # the job has not made it yet
        return 0


def test_index_command_killed_mid_run_and_run_again_stores_every_passage_once(tmp_path, tiny_bi):
    model = tiny_bi[0]
    _write_corpus(tmp_path / "docs", _sentences(PASSAGES, "Passage"), files=5)
    passages = read_passages([tmp_path / "docs"], max_words=1)
    expected = {content_id(p.text, p.source): p.text for p in passages}
    assert len(passages) == len(expected) == PASSAGES
    db = tmp_path / "db"
    command = [sys.executable, "-m", "st_plugins.cli", "index", str(tmp_path / "docs"), "--db", str(db),
               "--model", str(model.model_name_or_path), "--device", "cpu", "--max-words", "1", "--batch-size", "8",
               "--quiet"]
    started = time.monotonic()
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while not (db / "chroma.sqlite3").exists() and job.poll() is None and time.monotonic() - started < 60:
            time.sleep(0.05)  # let the job make the database before this process opens it
        client, seen = chromadb.PersistentClient(path=str(db)), 0
        while job.poll() is None and seen < PASSAGES // 10 and time.monotonic() - started < 60:
            seen = _count(client, "st_plugins")  # committed batches, as another process sees them
            time.sleep(0.02)
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            COUNTS["faults"] += 1
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        output = job.communicate()[0].decode(errors="replace")
    assert job.returncode == -signal.SIGKILL, f"the job ended by itself before the kill:\n{output[-3000:]}"
    left = _count(client, "st_plugins")
    assert 0 < left < PASSAGES, f"the kill was not mid-run: {left} of {PASSAGES} passages committed"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0 and "Traceback" not in rerun.stderr, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    summary = rerun.stdout.strip().splitlines()[-1]
    new, present = (int(n) for n in summary.split(": ")[1].split(" already")[0].split(" new, "))
    assert f"Indexed {PASSAGES} passages from 5 files" in summary and f"({PASSAGES} in total)" in summary, summary
    assert new + present == PASSAGES and present >= left and new > 0, summary  # it added only what was missing
    client.clear_system_cache()  # this process's reader predates the re-run's writes: open the folder afresh
    client = chromadb.PersistentClient(path=str(db))
    _exactly_once(client.get_collection("st_plugins"), expected, model,
                  {content_id(p.text, p.source): {"source": p.source, "passage": p.index} for p in passages})
    _report(f"st-plugins index SIGKILLed with {left} of {PASSAGES} passages committed; the re-run added {new} "
            f"({time.monotonic() - started:.1f} s)")


# ----------------------------------------------------------------------------- (b) the Chroma server killed
DOCS, BATCH = 300, 10  # 30 batches


class _KillsServer:
    """The real collection, with one fault: the server is SIGKILLed right before or right after the ``nth``
    call of ``method`` (``nth=-1``: the last batch's call). Every call still goes to the real server."""

    def __init__(self, collection, server: ChromaServer, method: str, nth: int, when: str) -> None:
        self._collection, self._server, self._method, self._when = collection, server, method, when
        self._nth = DOCS // BATCH if nth == -1 else nth
        self._calls, self.fired = 0, False

    def __getattr__(self, name: str):
        attr = getattr(self._collection, name)
        if name != self._method:
            return attr

        def call(*args, **kwargs):
            self._calls += 1
            if self._when == "before":
                self._fire()
            out = attr(*args, **kwargs)
            if self._when == "after":
                self._fire()
            return out

        return call

    def _fire(self) -> None:
        if self._calls == self._nth and not self.fired:
            self._server.stop(kill=True)
            self.fired = True


class _KillsServerWhenCount:
    """A thread that SIGKILLs the server once a second client sees ``at`` documents in the collection: the kill
    lands wherever the writer's requests are (mid-request, between a ``get`` and its ``add``, ...)."""

    def __init__(self, server: ChromaServer, name: str, at: int) -> None:
        self.server, self.name, self.at, self.fired = server, name, at, False
        self.seen = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._collection = self.server.client().get_collection(self.name)
        self._stop = threading.Event()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.seen = self._collection.count()
            except Exception:  # the server went away for another reason (the test fails on its own)
                return
            if self.seen >= self.at:
                self.server.stop(kill=True)
                self.fired = True
                return
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.mark.parametrize("fault", ["before-add-3", "after-add-3", "after-last-add", "during-writes"])
def test_chroma_server_killed_during_index_documents_is_a_store_error_and_a_rerun_completes(tmp_path, tiny_bi,
                                                                                          fault):
    """The killed server is a StoreUnavailableError saying to start it and re-run; after a restart on the same
    folder and port, the same call (same collection object) adds exactly what is missing."""
    model = tiny_bi[0]
    texts = _sentences(DOCS, f"Document ({fault})")
    ids = [content_id(t) for t in texts]
    metadatas = [{"n": i, "fault": fault} for i in range(DOCS)]
    server = ChromaServer(tmp_path).start()
    try:
        collection = open_collection(None, "faults", str(model.model_name_or_path), "cpu", create=True, url=server.url)
        started = time.monotonic()
        if fault == "during-writes":
            with _KillsServerWhenCount(server, "faults", at=DOCS // 4) as killer, \
                    pytest.raises(StoreUnavailableError) as caught:
                index_documents(collection, texts, ids=ids, metadatas=metadatas, batch_size=BATCH,
                                show_progress_bar=False)
            assert killer.fired, f"the run ended before the kill ({killer.seen} of {DOCS} seen)"
        else:
            method, nth, when = {"before-add-3": ("add", 3, "before"), "after-add-3": ("add", 3, "after"),
                                 "after-last-add": ("add", -1, "after")}[fault]
            killer = _KillsServer(collection, server, method, nth, when)
            with pytest.raises(StoreUnavailableError) as caught:
                index_documents(killer, texts, ids=ids, metadatas=metadatas, batch_size=BATCH, show_progress_bar=False)
            assert killer.fired
        COUNTS["faults"] += 1
        error = caught.value
        message = str(error)
        assert message.startswith("The Chroma server stopped answering after ") and f"of {DOCS} texts" in message
        assert "start the server again and re-run the same call" in message and "Nothing is lost" in message
        assert error.__cause__ is None and error.__suppress_context__  # no HTTP client trace chained to it
        shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        assert "httpx" not in shown and "During handling" not in shown and "direct cause" not in shown, shown

        server.start()  # the same data folder and port
        kept = server.client().get_collection("faults").count()
        if fault == "after-last-add":
            assert kept == DOCS  # everything was written; only the final count failed
        else:
            assert 0 < kept < DOCS, f"the kill was not mid-run: {kept} of {DOCS} kept"
        result = index_documents(collection, texts, ids=ids, metadatas=metadatas, batch_size=BATCH,
                                 show_progress_bar=False)
        assert (result.added, result.skipped, result.total, result.ids) == (DOCS - kept, kept, DOCS, ids)
        _exactly_once(server.client().get_collection("faults"), dict(zip(ids, texts)), model,
                      dict(zip(ids, metadatas)))
        cause = message.split(" texts (", 1)[1].split(":", 1)[0]
        _report(f"chroma server SIGKILLed {fault} (client saw {cause}): {kept} of {DOCS} kept, the re-run added "
                f"{result.added} ({time.monotonic() - started:.1f} s)")
    finally:
        server.stop()
