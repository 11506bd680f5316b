"""``st-plugins index --ray`` into a database folder and a server, then ``search`` over what it wrote."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")
chromadb = pytest.importorskip("chromadb")

from st_plugins.cli import main  # noqa: E402
from st_plugins.indexing import content_id, read_passages  # noqa: E402
from tests.conftest import ChromaServer  # noqa: E402

DOCS = "docs"


def _ids(collection) -> set[str]:
    return set(collection.get(include=[])["ids"])


def test_index_on_ray_into_a_folder_equals_indexing_here(ray_cluster, tmp_path, capsys):
    assert main(["index", DOCS, "--db", str(tmp_path / "ray_db"), "--ray", "--quiet"]) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["index", DOCS, "--db", str(tmp_path / "ray_db"), "--ray", "--actors", "1", "--quiet"]) == 0
    again = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["index", DOCS, "--db", str(tmp_path / "here_db"), "--quiet"]) == 0
    here = capsys.readouterr().out.strip().splitlines()[-1]
    passages = read_passages([DOCS])
    n = len({content_id(p.text, p.source) for p in passages})
    assert f"{n} new, 0 already present ({n} in total)" in first
    assert f"0 new, {n} already present ({n} in total)" in again
    assert first.replace("ray_db", "X") == here.replace("here_db", "X")
    ray_side = chromadb.PersistentClient(path=str(tmp_path / "ray_db")).get_collection("st_plugins")
    single = chromadb.PersistentClient(path=str(tmp_path / "here_db")).get_collection("st_plugins")
    assert _ids(ray_side) == _ids(single)
    query = "reopen a Chroma collection in a new process"
    assert main(["search", query, "--db", str(tmp_path / "ray_db"), "-k", "3"]) == 0
    from_ray = capsys.readouterr().out
    assert main(["search", query, "--db", str(tmp_path / "here_db"), "-k", "3"]) == 0
    assert from_ray == capsys.readouterr().out  # same passages, same scores to 4 decimals


def test_index_and_search_through_a_server(ray_cluster, tmp_path, capsys):
    server = ChromaServer(tmp_path).start()
    try:
        assert main(["index", DOCS, "--chroma-url", server.url, "--ray", "--quiet"]) == 0
        assert main(["index", DOCS, "--chroma-url", server.url, "--quiet"]) == 0  # here: finds all present
        out = capsys.readouterr().out.strip().splitlines()
        assert " 0 new," in out[-1] and "new, 0 already present" in out[-2]
        assert main(["search", "reopen a Chroma collection in a new process", "--chroma-url", server.url, "-k", "1"]) == 0
        assert "docs/chroma.md" in capsys.readouterr().out
    finally:
        server.stop()


def test_db_and_chroma_url_are_one_or_the_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["index", DOCS, "--db", str(tmp_path / "db"), "--chroma-url", "http://127.0.0.1:1"])
    assert "not allowed with argument" in capsys.readouterr().err
