"""The public API is pinned and `import st_plugins` stays light."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import pytest

import st_plugins
import st_plugins.errors

HEAVY = ["torch", "transformers", "chromadb", "sklearn", "langchain_core", "numpy", "sentence_transformers"]


def test_public_api_names_are_pinned():
    assert st_plugins.__all__ == [
        "__version__", "SentenceTransformer", "CrossEncoder", "SimilarityFunction", "get_model", "util",
        "StPluginsError", "InputTypeError", "InputValueError", "ModelNotFoundError", "ModelFormatError",
        "UnsafeCheckpointError", "MissingDependencyError", "BackendError", "DataNotFoundError",
        "StoreUnavailableError",
    ]


def test_public_api_import_is_light():
    code = f"import st_plugins, st_plugins.util, sys, json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_public_api_errors_subclass_builtins():
    assert issubclass(st_plugins.InputTypeError, TypeError)
    assert issubclass(st_plugins.InputValueError, ValueError)
    assert issubclass(st_plugins.ModelNotFoundError, OSError)
    assert issubclass(st_plugins.MissingDependencyError, ImportError)
    assert issubclass(st_plugins.BackendError, RuntimeError)
    assert issubclass(st_plugins.DataNotFoundError, FileNotFoundError)
    assert issubclass(st_plugins.StoreUnavailableError, ConnectionError)
    for name in st_plugins.__all__[6:]:
        assert issubclass(getattr(st_plugins, name), st_plugins.StPluginsError)


# ---------------------------------------------------------------- every public module's names, and where each lives
PUBLIC = {
    "st_plugins.errors": {"st_plugins.errors": [
        "StPluginsError", "InputTypeError", "InputValueError", "ModelNotFoundError", "ModelFormatError",
        "UnsafeCheckpointError", "MissingDependencyError", "BackendError", "DataNotFoundError", "StoreUnavailableError"]},
    "st_plugins.util": {
        "st_plugins.core.similarity": ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "pairwise_cos_sim",
                                       "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim",
                                       "normalize_embeddings"],
        "st_plugins.core.search": ["semantic_search", "paraphrase_mining", "paraphrase_mining_embeddings",
                                   "community_detection"],
        "st_plugins.core.quantization": ["quantize_embeddings"]},
    "st_plugins.chroma": {"st_plugins.chroma._embedding_function": ["ChromaEmbeddingFunction"],
                          "st_plugins.chroma._multimodal": ["ChromaMultimodalEmbeddingFunction", "ImageLoader"],
                          "st_plugins.chroma._collection": ["connect", "open_collection"], None: ["VECTOR_SETTINGS"]},
    "st_plugins.sklearn": {"st_plugins.sklearn._embedding": ["EmbeddingTransformer"],
                           "st_plugins.sklearn._image": ["ImageEmbeddingTransformer"],
                           "st_plugins.sklearn._scorer": ["CrossEncoderScorer"]},
    "st_plugins.langchain": {"st_plugins.langchain._embeddings": ["LangChainEmbeddings"],
                             "st_plugins.langchain._cross_encoder": ["LangChainCrossEncoder"],
                             "st_plugins.langchain._rerank": ["CrossEncoderReranker"]},
    "st_plugins.ray": {"st_plugins.ray._batches": ["EmbedBatch", "RerankBatch"], "st_plugins.ray._sink": ["ChromaDatasink"],
                       "st_plugins.ray._pipeline": ["embed_dataset", "rerank_dataset", "index_documents"]},
    "st_plugins.indexing": {"st_plugins.indexing": ["IndexResult", "Passage", "content_id", "index_documents",
                                                    "index_images", "iter_image_files", "iter_text_files",
                                                    "read_passages", "split_passages"]},
    "st_plugins.cross_encoder": {"st_plugins.core.cross_encoder": ["CrossEncoder"]},
    "st_plugins.cross_encoder.evaluation": {"st_plugins.training.evaluators": [
        "CrossEncoderCorrelationEvaluator", "CrossEncoderRerankingEvaluator"]},
    "st_plugins.training": {
        "st_plugins.training.trainer": ["Example", "TrainingArguments", "TrainResult", "Trainer"],
        "st_plugins.training.losses": ["MultipleNegativesRankingLoss", "CoSENTLoss", "CosineSimilarityLoss",
                                       "BinaryCrossEntropyLoss", "CrossEntropyLoss", "MSELoss"],
        "st_plugins.training.evaluators": ["EmbeddingSimilarityEvaluator", "CrossEncoderCorrelationEvaluator",
                                           "CrossEncoderRerankingEvaluator"],
        "st_plugins.training.recipes": ["train_stsb_reranker", "finetune_bi_encoder_cosent"],
        "st_plugins.training.image_text": ["ImageTextModel"],
        "st_plugins.training.clip_digits": ["train_clip_digits"]},
    "st_plugins.training.losses": {"st_plugins.training.losses": [
        "MultipleNegativesRankingLoss", "CoSENTLoss", "CosineSimilarityLoss", "BinaryCrossEntropyLoss",
        "CrossEntropyLoss", "MSELoss", "ListwiseSoftmaxLoss"]},
    "st_plugins.training.evaluators": {"st_plugins.training.evaluators": [
        "EmbeddingSimilarityEvaluator", "CrossEncoderCorrelationEvaluator", "CrossEncoderRerankingEvaluator"]},
    "st_plugins.data": {"st_plugins.data": ["data_dir", "read_splits", "StsPair", "read_sts", "read_banking77",
                                            "QaQuestion", "read_wikiqa"]},
}
TOP_LEVEL_HOMES = {"SentenceTransformer": "st_plugins.core.bi_encoder", "CrossEncoder": "st_plugins.core.cross_encoder",
                   "SimilarityFunction": "st_plugins.core.similarity", "get_model": "st_plugins.core.cache"}


def _homes(module: str) -> dict[str, str | None]:
    return {name: home for home, names in PUBLIC[module].items() for name in names}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_api_module_names_and_homes_are_pinned(module):
    pytest.importorskip({"st_plugins.chroma": "chromadb", "st_plugins.sklearn": "sklearn",
                         "st_plugins.langchain": "langchain_core", "st_plugins.ray": "ray"}.get(module, "json"))
    loaded = importlib.import_module(module)
    homes = _homes(module)
    assert sorted(loaded.__all__) == sorted(homes) and len(set(loaded.__all__)) == len(loaded.__all__)
    for name, home in homes.items():
        obj = getattr(loaded, name)
        assert (getattr(obj, "__module__", None) if home else None) == home, name


def test_public_api_top_level_homes_are_pinned():
    for name, home in TOP_LEVEL_HOMES.items():
        assert getattr(st_plugins, name).__module__ == home
    for name in st_plugins.errors.__all__:
        assert getattr(st_plugins, name) is getattr(st_plugins.errors, name)
    assert st_plugins.util is importlib.import_module("st_plugins.util")


# ---------------------------------------------------------------- signatures against sentence-transformers' own
def _params(fn) -> list[tuple[str, str, object]]:
    out = []
    for p in inspect.signature(fn).parameters.values():
        default = p.default
        if callable(default) and not isinstance(default, type):
            default = f"<{default.__name__}>"  # cos_sim: ours and theirs are different objects of the same name
        out.append((p.name, p.kind.name, default))
    return out


# What differs on purpose: (parameters only we have, parameters only sentence-transformers has, defaults that differ).
_ST_INIT_EXTRA = {"allow_pickle"}
SIGNATURES = {
    ("SentenceTransformer", "__init__"): (_ST_INIT_EXTRA, set(), {"backend": ("auto", "torch")}),
    ("SentenceTransformer", "encode"): ({"ranges"}, {"kwargs"}, {}),
    ("SentenceTransformer", "encode_query"): (set(), set(), {}),
    ("SentenceTransformer", "encode_document"): (set(), set(), {}),
    ("SentenceTransformer", "similarity"): (set(), set(), {}),
    ("SentenceTransformer", "similarity_pairwise"): (set(), set(), {}),
    ("SentenceTransformer", "get_embedding_dimension"): (set(), set(), {}),
    ("SentenceTransformer", "get_sentence_embedding_dimension"): (set(), set(), {}),
    ("SentenceTransformer", "save"): (set(), set(), {}),
    ("SentenceTransformer", "save_pretrained"): (set(), set(), {}),
    ("CrossEncoder", "__init__"): (_ST_INIT_EXTRA, set(), {"backend": ("auto", "torch")}),
    ("CrossEncoder", "predict"): (set(), {"kwargs"}, {}),
    ("CrossEncoder", "rank"): (set(), set(), {}),
    ("CrossEncoder", "save"): (set(), set(), {}),
    ("CrossEncoder", "save_pretrained"): (set(), set(), {}),
}
UTIL = ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "pairwise_cos_sim", "pairwise_dot_score",
        "pairwise_euclidean_sim", "pairwise_manhattan_sim", "normalize_embeddings", "semantic_search",
        "paraphrase_mining", "paraphrase_mining_embeddings", "community_detection", "quantize_embeddings"]


def _compare(ours, theirs, extra: set, missing: set, defaults: dict) -> None:
    mine, st = _params(ours), _params(theirs)
    assert {n for n, _, _ in mine} - {n for n, _, _ in st} == extra, "parameters only st_plugins has"
    assert {n for n, _, _ in st} - {n for n, _, _ in mine} == missing, "parameters only sentence-transformers has"
    for name, kind, default in mine:
        if name in extra:
            assert kind in ("KEYWORD_ONLY", "VAR_KEYWORD") or mine.index((name, kind, default)) >= len(st), name
    shared_mine = [p for p in mine if p[0] not in extra]
    shared_st = [p for p in st if p[0] not in missing]
    assert [(n, k) for n, k, _ in shared_mine] == [(n, k) for n, k, _ in shared_st], "names, order and kinds"
    for (name, _, mine_default), (_, _, st_default) in zip(shared_mine, shared_st):
        if name in defaults:
            assert (mine_default, st_default) == defaults[name], name
        else:
            assert mine_default == st_default, f"default of {name}: ours {mine_default!r}, theirs {st_default!r}"


@pytest.mark.parametrize("cls,method", sorted(SIGNATURES))
def test_public_api_signatures_match_sentence_transformers(cls, method):
    st = pytest.importorskip("sentence_transformers")
    extra, missing, defaults = SIGNATURES[cls, method]
    _compare(getattr(getattr(st_plugins, cls), method), getattr(getattr(st, cls), method), extra, missing, defaults)


@pytest.mark.parametrize("name", UTIL)
def test_public_api_util_signatures_match_sentence_transformers(name):
    st_util = pytest.importorskip("sentence_transformers.util")
    _compare(getattr(st_plugins.util, name), getattr(st_util, name), set(), set(), {})


def test_public_api_old_keyword_names_still_work(tiny_bert_dir):
    """``sentences=`` / ``tokenizer_kwargs=`` (renamed in sentence-transformers 6) are accepted, with a warning."""
    with pytest.warns(DeprecationWarning, match="`tokenizer_kwargs` was renamed to `processor_kwargs`"):
        model = st_plugins.SentenceTransformer(str(tiny_bert_dir), device="cpu", tokenizer_kwargs={})
    with pytest.warns(DeprecationWarning, match="`sentences` was renamed to `inputs`"):
        old = model.encode(sentences=["a b", "c"])
    assert (old == model.encode(["a b", "c"])).all()
    with pytest.raises(st_plugins.InputValueError, match="`pool` is not supported by st_plugins"):
        model.encode(["a"], pool={"processes": 2})
    with pytest.raises(st_plugins.InputValueError, match="`modules` is not supported"):
        st_plugins.SentenceTransformer(modules=[object()])
    with pytest.raises(TypeError):  # keyword-only, as in sentence-transformers
        st_plugins.SentenceTransformer(str(tiny_bert_dir), "cpu")
