"""ChromaDatasink and Ray index_documents against a real ``chroma run`` server and an embedded folder."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")
chromadb = pytest.importorskip("chromadb")

from st_plugins.chroma import ChromaEmbeddingFunction  # noqa: E402
from st_plugins.errors import InputTypeError, InputValueError, StoreUnavailableError  # noqa: E402
from st_plugins.indexing import content_id  # noqa: E402
from st_plugins.ray import ChromaDatasink, embed_dataset, index_documents  # noqa: E402


def _stored(collection, ids):
    got = collection.get(ids=ids, include=["embeddings", "documents", "metadatas"])
    order = {value: i for i, value in enumerate(got["ids"])}
    pick = [order[i] for i in ids]
    return (np.asarray(got["embeddings"])[pick], [got["documents"][i] for i in pick],
            [got["metadatas"][i] for i in pick])


def test_datasink_writes_each_row_once_into_a_server_and_a_rerun_adds_nothing(ray_cluster, chroma_server, model,
                                                                               sentences):
    host, port = chroma_server
    url = f"http://{host}:{port}"
    texts = sentences[:300] + sentences[:40]  # 40 repeated rows: one document each
    rows = [{"text": t, "topic": "sts" if i % 2 else None, "n": i} for i, t in enumerate(texts)]
    for _ in range(2):
        ds = embed_dataset(ray.data.from_items(rows, override_num_blocks=6), concurrency=2, role="document")
        ds.write_datasink(ChromaDatasink("ray-sink", url=url, metadata_columns=["topic"], batch_size=50),
                          ray_remote_args={"num_cpus": 0})
    collection = chromadb.HttpClient(host=host, port=port).get_collection("ray-sink")
    ids = [content_id(t) for t in sentences[:300]]
    assert collection.count() == 300
    vectors, documents, metadatas = _stored(collection, ids)
    assert documents == sentences[:300]
    assert np.abs(vectors - model.encode(sentences[:300])).max() <= 1e-6
    assert metadatas[:4] == [None, {"topic": "sts"}, None, {"topic": "sts"}]
    # the collection queries with the same function: a stored sentence finds itself first
    assert collection.configuration_json["embedding_function"]["name"] == "st_plugins"
    assert collection.query(query_texts=[sentences[7]], n_results=1)["ids"][0] == [ids[7]]


def test_index_documents_into_a_folder_equals_the_single_process_index(ray_cluster, tmp_path, model, sentences):
    from st_plugins.chroma import open_collection
    from st_plugins.indexing import index_documents as index_here

    # keys that differ between rows, ints, floats, bools and str: stored as given, as without Ray
    texts = sentences[:200]
    metas = [{"source": f"f{i % 3}.md", "passage": i} | ({"page": i // 7} if i % 2 else {"tag": "x", "ok": i % 4 == 0})
             | ({"score": i / 8} if i % 5 == 0 else {}) for i in range(200)]
    ids = [content_id(t, m["source"]) for t, m in zip(texts, metas)]
    first = index_documents(texts[:120], path=tmp_path / "ray_db", ids=ids[:120], metadatas=metas[:120],
                            show_progress_bar=False)
    again = index_documents(texts, path=tmp_path / "ray_db", ids=ids, metadatas=metas, show_progress_bar=False)
    assert (first.added, first.skipped, first.total) == (120, 0, 120)
    assert (again.added, again.skipped, again.total) == (80, 120, 200)
    here = index_here(open_collection(tmp_path / "here_db", "st_plugins", create=True), texts, ids=ids,
                      metadatas=metas, show_progress_bar=False)
    assert here.total == 200
    ray_side = chromadb.PersistentClient(path=str(tmp_path / "ray_db")).get_collection("st_plugins")
    single = chromadb.PersistentClient(path=str(tmp_path / "here_db")).get_collection("st_plugins")
    got, want = _stored(ray_side, ids), _stored(single, ids)
    assert np.abs(got[0] - want[0]).max() <= 1e-6 and got[1:] == want[1:]
    assert ray_side.configuration_json["embedding_function"] == single.configuration_json["embedding_function"]
    assert got[2] == metas and type(got[2][1]["page"]) is int  # nothing turned into floats or NaN on the way


def test_an_existing_collection_keeps_its_model(ray_cluster, tmp_path, sentences):
    index_documents(sentences[:10], path=tmp_path / "db", show_progress_bar=False)
    other = ChromaEmbeddingFunction("all-MiniLM-L6-v2", normalize_embeddings=True)
    with pytest.raises(InputValueError, match=r"Cannot change \['normalize_embeddings'\]"):
        index_documents(sentences[:20], path=tmp_path / "db", embedding_function=other, show_progress_bar=False)
    assert chromadb.PersistentClient(path=str(tmp_path / "db")).get_collection("st_plugins").count() == 10


def test_an_error_inside_ray_reaches_the_caller_as_the_typed_error(ray_cluster, tmp_path, sentences):
    with pytest.raises(InputValueError, match=r"^Chroma refuses the collection name 'ab'") as caught:
        index_documents(sentences[:4], "ab", path=tmp_path / "db", show_progress_bar=False)
    assert not isinstance(caught.value, ray.exceptions.RayError) and "Traceback" not in str(caught.value)
    with pytest.raises(InputValueError, match=r"`num_gpus=1` per actor \(--gpus-per-actor\), but the Ray cluster has 0"):
        index_documents(sentences[:4], path=tmp_path / "db", concurrency=2, num_gpus=1, show_progress_bar=False)


def test_a_server_that_does_not_answer_is_a_store_error(ray_cluster):
    from tests.conftest import _free_port

    sink = ChromaDatasink("nowhere", url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(StoreUnavailableError, match=r"No Chroma server answers at http://127\.0\.0\.1:\d+ .*Start one"):
        sink.count()


@pytest.mark.parametrize("kwargs, error, match", [
    ({}, InputValueError, r"Pass either `path` \(a Chroma database folder\) or `url`"),
    ({"path": "db", "url": "http://h:1"}, InputValueError, r"Pass either `path`"),
    ({"url": "h:8000"}, InputValueError, r"A Chroma server URL must look like http://HOST:PORT .*got 'h:8000'"),
    ({"url": "http://h:99999"}, InputValueError, r"port of the Chroma server URL 'http://h:99999' is not a number"),
    ({"path": "db", "metadata_columns": "topic"}, InputTypeError, r"`metadata_columns` must be a list of column names"),
    ({"path": "db", "embedding_function": "all-MiniLM-L6-v2"}, InputTypeError,
     r"`embedding_function` must be an st_plugins.chroma.ChromaEmbeddingFunction"),
    ({"path": "db", "batch_size": -1}, InputValueError, r"`batch_size` must be a positive int; got -1"),
])
def test_datasink_settings_are_checked_when_made(kwargs, error, match):
    with pytest.raises(error, match=match):
        ChromaDatasink("c-name", **kwargs)


def test_index_documents_checks_its_input_before_ray_runs(tmp_path):
    with pytest.raises(InputTypeError, match=r"`texts\[1\]` must be a str; got NoneType"):
        index_documents(["a", None], path=tmp_path / "db")
    with pytest.raises(InputValueError, match=r"`ids` must have one id per text \(2\); got 1"):
        index_documents(["a", "b"], path=tmp_path / "db", ids=["x"])
    assert not (tmp_path / "db").exists()


class _KillsServerAfterFirstChunk(ChromaDatasink):
    """A sink that kills the Chroma server (SIGKILL) right after writing its first chunk."""

    def __init__(self, server, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.server = server

    def __getstate__(self):  # never pickled here: write() runs in this process
        raise AssertionError

    def _target(self):
        write = super()._target()

        def write_then_kill(rows):
            write(rows)
            self.server.stop(kill=True)

        return write_then_kill


def test_a_server_killed_during_a_write_is_a_store_error_and_a_rerun_completes(tmp_path, model, sentences):
    import pyarrow as pa

    from tests.conftest import ChromaServer

    server = ChromaServer(tmp_path).start()
    try:
        texts = sentences[:90]
        block = pa.table({"text": texts, "embedding": list(model.encode(texts))})
        sink = _KillsServerAfterFirstChunk(server, "killed-server", url=server.url, batch_size=30)
        sink.count()  # creates the collection
        with pytest.raises(StoreUnavailableError, match=r"Writing 30 rows into collection 'killed-server' at "
                                                        r"http://127\.0\.0\.1:\d+ failed: .*re-run the same job"):
            sink.write([block], None)
        server.start()  # the same data folder and port
        assert server.client().get_collection("killed-server").count() == 30  # the first chunk was kept
        ChromaDatasink("killed-server", url=server.url, batch_size=30).write([block], None)
        collection = server.client().get_collection("killed-server")
        assert collection.count() == 90
        got, documents, _ = _stored(collection, [content_id(t) for t in texts])
        assert documents == texts and np.abs(got - model.encode(texts)).max() <= 1e-6
    finally:
        server.stop()
