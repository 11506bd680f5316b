"""ChromaEmbeddingFunction against real chromadb: protocol, config round-trip, prompts, bad input, caching."""

from __future__ import annotations

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")

from chromadb.api.types import EmbeddingFunction  # noqa: E402
from chromadb.utils.embedding_functions import known_embedding_functions  # noqa: E402

from st_plugins.chroma import VECTOR_SETTINGS, ChromaEmbeddingFunction  # noqa: E402
from st_plugins.core.cache import cache_key, get_model, load_counts  # noqa: E402
from st_plugins.errors import InputTypeError, InputValueError, StPluginsError  # noqa: E402

DOCS = ["A man is eating food.", "A monkey is playing drums.", "The new movie is awesome.", "A cheetah chases prey."]
PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def tiny_folder(make_st_folder):
    """A tiny random model whose own prompts are query/document, normalized, cosine."""
    return make_st_folder(normalize=True, prompts=PROMPTS)


@pytest.fixture()
def client():
    # Chroma keeps one in-process ephemeral system per settings: use the same settings as the
    # LangChain tests, or whichever runs second fails with "already exists with different settings".
    return chromadb.EphemeralClient(settings=chromadb.config.Settings(anonymized_telemetry=False))


def _unique(name: str) -> str:
    import uuid

    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_chroma_embedding_function_is_registered_protocol():
    assert issubclass(ChromaEmbeddingFunction, EmbeddingFunction)
    assert ChromaEmbeddingFunction.name() == "st_plugins"
    assert known_embedding_functions["st_plugins"] is ChromaEmbeddingFunction
    assert not ChromaEmbeddingFunction(device="cpu").is_legacy()


def test_chroma_embedding_function_returns_float32_rows_equal_to_core(model):
    ef = ChromaEmbeddingFunction("all-MiniLM-L6-v2", device="cpu")
    vectors = ef(DOCS)
    assert isinstance(vectors, list) and len(vectors) == len(DOCS)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (384,) for v in vectors)
    np.testing.assert_allclose(np.stack(vectors), model.encode(DOCS), atol=1e-6)
    assert ef.model is model  # the shared, cached instance
    assert ef.default_space() == "cosine"
    assert ef.supported_spaces() == ["cosine", "l2", "ip"]


def test_chroma_embedding_function_uses_document_and_query_prompts(tiny_folder):
    ef = ChromaEmbeddingFunction(tiny_folder, device="cpu")
    core = ef.model
    np.testing.assert_allclose(np.stack(ef(DOCS)), core.encode(DOCS, prompt="passage: "), atol=1e-6)
    np.testing.assert_allclose(np.stack(ef.embed_query(DOCS)), core.encode(DOCS, prompt="query: "), atol=1e-6)
    assert not np.allclose(np.stack(ef(DOCS)), np.stack(ef.embed_query(DOCS)))
    custom = ChromaEmbeddingFunction(tiny_folder, device="cpu", prompts={"query": "Q: "})
    np.testing.assert_allclose(np.stack(custom.embed_query(DOCS)), core.encode(DOCS, prompt="Q: "), atol=1e-6)
    np.testing.assert_allclose(np.stack(custom(DOCS)), core.encode(DOCS, prompt="passage: "), atol=1e-6)


def test_chroma_embedding_function_config_round_trips_every_vector_setting(tiny_folder):
    ef = ChromaEmbeddingFunction(tiny_folder, device="cpu", normalize_embeddings=True, prompts={"query": "q: "},
                                 truncate_dim=16, dtype="float32", revision=None, batch_size=8)
    config = ef.get_config()
    assert set(VECTOR_SETTINGS) <= set(config) and config["model_name"] == str(tiny_folder)
    assert config["truncate_dim"] == 16 and config["prompts"] == {"query": "q: "} and config["device"] == "cpu"
    rebuilt = ChromaEmbeddingFunction.build_from_config(config)
    assert rebuilt.get_config() == config
    np.testing.assert_allclose(np.stack(rebuilt(DOCS)), np.stack(ef(DOCS)), atol=0)
    assert rebuilt(DOCS)[0].shape == (16,)
    assert np.allclose(np.linalg.norm(np.stack(rebuilt(DOCS)), axis=1), 1.0, atol=1e-5)


def test_chroma_embedding_function_stored_config_rebuilds_in_collection(client, tiny_folder):
    ef = ChromaEmbeddingFunction(tiny_folder, device="cpu", truncate_dim=16)
    name = _unique("cfg")
    client.create_collection(name, embedding_function=ef)
    stored = client.get_collection(name).configuration_json["embedding_function"]
    assert stored == {"type": "known", "name": "st_plugins", "config": ef.get_config()}
    assert client.get_collection(name).configuration_json["hnsw"]["space"] == "cosine"


def test_chroma_embedding_function_validate_config_refuses_unknown_settings():
    with pytest.raises(InputValueError, match=r"Unknown st_plugins embedding settings \['pooling'\]"):
        ChromaEmbeddingFunction.validate_config({"model_name": "m", "pooling": "cls"})
    with pytest.raises(InputValueError, match="must be a dict with `model_name`"):
        ChromaEmbeddingFunction.validate_config({})


@pytest.mark.parametrize("key, value", [("model_name", "other-model"), ("truncate_dim", 8), ("normalize_embeddings", True),
                                        ("prompts", {"query": "x"}), ("dtype", "bfloat16"), ("revision", "v2")])
def test_chroma_embedding_function_update_refuses_vector_changes(key, value):
    ef = ChromaEmbeddingFunction(device="cpu")
    new = {**ef.get_config(), key: value}
    with pytest.raises(InputValueError, match=rf"Cannot change \['{key}'\].*Create a new collection"):
        ef.validate_config_update(ef.get_config(), new)


def test_chroma_embedding_function_update_allows_device_and_batch_size(client, tiny_folder):
    ef = ChromaEmbeddingFunction(tiny_folder, device="cpu")
    ef.validate_config_update(ef.get_config(), {**ef.get_config(), "device": "cuda", "batch_size": 4})
    name = _unique("upd")
    collection = client.create_collection(name, embedding_function=ef)
    collection.modify(configuration={"embedding_function": ChromaEmbeddingFunction(tiny_folder, device="cpu", batch_size=4)})
    assert client.get_collection(name).configuration_json["embedding_function"]["config"]["batch_size"] == 4
    with pytest.raises(InputValueError, match=r"Cannot change \['truncate_dim'\]"):
        collection.modify(configuration={"embedding_function": ChromaEmbeddingFunction(tiny_folder, device="cpu",
                                                                                       truncate_dim=8)})


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_chroma_embedding_function_refuses_quantized_precision(precision):
    with pytest.raises(InputValueError, match=rf"`precision` must be 'float32' for Chroma.*got '{precision}'"):
        ChromaEmbeddingFunction(precision=precision)


@pytest.mark.parametrize("bad, error, pattern", [
    ([], InputValueError, r"`input` must be a non-empty list of str; got an empty list"),
    (None, InputTypeError, r"`input` must be a str or a list of str; got NoneType"),
    (["ok", 3], InputTypeError, r"`input\[1\]` must be a str; got int \(3\)"),
    (["ok", None], InputTypeError, r"`input\[1\]` must be a str; got NoneType"),
])
def test_chroma_embedding_function_bad_input_raises_core_errors(tiny_folder, bad, error, pattern):
    ef = ChromaEmbeddingFunction(tiny_folder, device="cpu")
    for call in (ef, ef.embed_query):
        with pytest.raises(error, match=pattern) as info:
            call(bad)
        assert isinstance(info.value, StPluginsError)


@pytest.mark.parametrize("documents", [[], None, ["ok", 3]])
def test_chroma_embedding_function_bad_documents_write_nothing(client, tiny_folder, documents):
    collection = client.create_collection(_unique("bad"), embedding_function=ChromaEmbeddingFunction(tiny_folder, device="cpu"))
    ids = [f"id{i}" for i in range(len(documents or [0]))]
    with pytest.raises((TypeError, ValueError)):
        collection.add(ids=ids, documents=documents)
    assert collection.count() == 0


@pytest.mark.parametrize("bad, error", [({"query": 3}, InputTypeError), ({"passage": "p: "}, InputValueError)])
def test_chroma_embedding_function_bad_settings_raise(bad, error):
    with pytest.raises(error, match="`prompts`"):
        ChromaEmbeddingFunction(prompts=bad)
    with pytest.raises(InputValueError, match="`batch_size` must be a positive int; got 0"):
        ChromaEmbeddingFunction(batch_size=0)


def test_chroma_embedding_function_reopened_collection_loads_model_once(tmp_path, tiny_folder, monkeypatch):
    """Chroma rebuilds the function on every add/query of a reopened collection; the model loads once."""
    builds = []
    original = ChromaEmbeddingFunction.build_from_config
    monkeypatch.setattr(ChromaEmbeddingFunction, "build_from_config",
                        staticmethod(lambda config: builds.append(1) or original(config)))
    key = cache_key("bi", tiny_folder, device="cpu")
    before = load_counts().get(key, 0)
    client = chromadb.PersistentClient(path=str(tmp_path))
    client.create_collection("once", embedding_function=ChromaEmbeddingFunction(tiny_folder, device="cpu")).add(
        ids=[str(i) for i in range(len(DOCS))], documents=DOCS)
    reopened = chromadb.PersistentClient(path=str(tmp_path)).get_collection("once")
    builds.clear()
    for i in range(100):
        assert len(reopened.query(query_texts=[DOCS[i % 4]], n_results=1)["ids"][0]) == 1
    assert len(builds) >= 100  # Chroma rebuilt the function for (at least) every query ...
    assert load_counts()[key] - before <= 1  # ... and the model was loaded at most once (0 if already cached)
    assert get_model("bi", tiny_folder, device="cpu") is ChromaEmbeddingFunction(tiny_folder, device="cpu").model
