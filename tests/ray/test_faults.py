"""Faults on a real cluster: an embedding actor killed mid-run, a write task killed after its first
chunk, and the whole ``st-plugins index --ray`` job killed and run again. Each ends with every id in the
Chroma server exactly once, with the single-process vectors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
chromadb = pytest.importorskip("chromadb")

from st_plugins.indexing import content_id, read_passages  # noqa: E402
from st_plugins.ray import ChromaDatasink  # noqa: E402
from tests.conftest import ChromaServer  # noqa: E402
from tests.ray.faults import EmbedDiesOnce, SinkDiesOnce  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("chromadb")
    running = ChromaServer(tmp_path_factory.mktemp("chroma_faults")).start()
    yield running
    running.stop()


def _exactly_once(collection, texts, ids, model):
    """Every id present once (no more rows than ids), with its text and the single-process vector."""
    assert collection.count() == len(ids)
    got = collection.get(ids=ids, include=["embeddings", "documents"])
    assert sorted(got["ids"]) == sorted(ids)
    order = {value: i for i, value in enumerate(got["ids"])}
    pick = [order[i] for i in ids]
    assert [got["documents"][i] for i in pick] == texts
    assert np.abs(np.asarray(got["embeddings"])[pick] - model.encode(texts)).max() <= 1e-6


def test_an_embedding_actor_killed_mid_run_is_restarted_and_nothing_is_lost(ray_cluster, server, tmp_path, model,
                                                                           sentences):
    texts, marker = sentences[:300], tmp_path / "actor.killed"
    ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=6)
    ds = ds.map_batches(EmbedDiesOnce, fn_constructor_kwargs={"marker": str(marker)}, batch_size=50,
                        compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1)
    ds.write_datasink(ChromaDatasink("actor-killed", url=server.url), ray_remote_args={"num_cpus": 0})
    assert marker.exists(), "the fault did not fire"
    _exactly_once(server.client().get_collection("actor-killed"), texts, [content_id(t) for t in texts], model)


def test_a_write_task_killed_after_its_first_chunk_is_retried_without_duplicates(ray_cluster, server, tmp_path,
                                                                                 model, sentences):
    texts, marker = sentences[:400], tmp_path / "writer.killed"
    rows = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=2)
    ds = rows.map_batches(EmbedDiesOnce, fn_constructor_kwargs={"marker": str(tmp_path / "unused"), "role": None},
                          batch_size=200, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1)
    (tmp_path / "unused").write_text("0")  # the embedding side stays healthy here
    ds.write_datasink(SinkDiesOnce(str(marker), "writer-killed", url=server.url, batch_size=50),
                      ray_remote_args={"num_cpus": 0})
    assert marker.exists(), "the fault did not fire"
    _exactly_once(server.client().get_collection("writer-killed"), texts, [content_id(t) for t in texts], model)


def _write_corpus(folder: Path, sentences: list[str], files: int) -> None:
    """``files`` .txt files, one sentence per paragraph (with --max-words 1, one passage per sentence end)."""
    folder.mkdir()
    for f in range(files):
        (folder / f"part{f:02d}.txt").write_text("\n\n".join(sentences[f::files]) + "\n", encoding="utf-8")


def test_the_index_job_killed_midway_and_run_again_ends_with_every_passage_once(ray_cluster, server, tmp_path,
                                                                                 model, sts_dev):
    corpus = list(dict.fromkeys(s for p in sts_dev for s in (p.sentence1, p.sentence2)))[:1600]
    _write_corpus(tmp_path / "docs", corpus, files=8)
    passages = read_passages([tmp_path / "docs"], max_words=1)
    unique = dict.fromkeys((content_id(p.text, p.source), p.text) for p in passages)  # a repeated line: one id
    command = [sys.executable, "-m", "st_plugins.cli", "index", str(tmp_path / "docs"), "--chroma-url", server.url,
               "--collection", "killed-job", "--ray", ray_cluster, "--max-words", "1", "--batch-size", "32", "--quiet"]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    client, written, deadline = server.client(), 0, time.monotonic() + 240
    while job.poll() is None and time.monotonic() < deadline:
        try:
            written = client.get_collection("killed-job").count()
        except Exception:  # not made yet
            written = 0
        if written > 0:
            break
        time.sleep(0.1)
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)  # the driver and anything it started
    output = job.communicate()[0].decode(errors="replace")
    assert job.returncode == -signal.SIGKILL, f"the job ended by itself before the kill:\n{output[-3000:]}"
    time.sleep(1)  # in-flight writes of the dead job settle
    left = client.get_collection("killed-job").count()
    assert 0 < left < len(unique), f"the kill was not mid-run: {left} of {len(unique)} written"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    summary = rerun.stdout.strip().splitlines()[-1]
    assert f"Indexed {len(passages)} passages from 8 files" in summary
    added = int(summary.split(": ")[1].split(" new")[0])
    print(f"\nindex job SIGKILLed after {left} of {len(unique)} passages were written; the re-run added {added}")
    assert 0 < added <= len(unique) - left and f"({len(unique)} in total)" in summary  # only what was missing
    _exactly_once(client.get_collection("killed-job"), [t for _, t in unique], [i for i, _ in unique], model)
