"""Tiny random sequence-classification folders for cross-encoder tests (built once per session).

Import the fixtures into a test module: ``from tests.core.conftest_cross import make_cross_folder``.
BERT, DistilBERT and ELECTRA reuse MiniLM's WordPiece tokenizer; RoBERTa gets a byte-level BPE
tokenizer trained in memory on a few hundred sentences.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

ID2LABEL = {0: "contradiction", 1: "entailment", 2: "neutral"}
_WORDS = (["man", "woman", "dog", "child", "chef", "pilot"], ["eating", "reading", "riding", "cooking", "playing"],
          ["pasta", "a book", "a horse", "bread", "guitar", "in the park"])


class Doubled(nn.Module):
    """A non-torch activation class (importable by dotted path) for the trust_remote_code tests."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x


def _bpe_sentences() -> list[str]:
    out = []
    for i, who in enumerate(_WORDS[0]):
        for j, verb in enumerate(_WORDS[1]):
            for k, what in enumerate(_WORDS[2]):
                out.append(f"A {who} is {verb} {what}, number {i * 30 + j * 6 + k}! Ünïcödé?")
    return out


def _roberta_tokenizer():
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_bpe_sentences(), vocab_size=500, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    ids = {name: bpe.token_to_id(name) for name in ("<s>", "</s>")}
    bpe._tokenizer.post_processor = RobertaProcessing(("</s>", ids["</s>"]), ("<s>", ids["<s>"]))
    return RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, model_max_length=128)


def _model(arch: str, num_labels: int, vocab_size: int):
    import transformers as t

    labels = {"num_labels": num_labels, **({"id2label": ID2LABEL, "label2id": {v: k for k, v in ID2LABEL.items()}}
                                          if num_labels == 3 else {})}
    common = {"vocab_size": vocab_size, "num_hidden_layers": 2, "num_attention_heads": 2, "initializer_range": 0.2,
              "max_position_embeddings": 128, **labels}
    if arch == "bert":
        return t.BertForSequenceClassification(t.BertConfig(hidden_size=32, intermediate_size=64, **common))
    if arch == "roberta":
        common["max_position_embeddings"] = 130  # positions start after the padding index
        cfg = t.RobertaConfig(hidden_size=32, intermediate_size=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                              type_vocab_size=1, **common)
        return t.RobertaForSequenceClassification(cfg)
    if arch == "electra":
        cfg = t.ElectraConfig(embedding_size=16, hidden_size=32, intermediate_size=64, **common)
        return t.ElectraForSequenceClassification(cfg)
    if arch == "distilbert":
        cfg = t.DistilBertConfig(vocab_size=vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
                                 initializer_range=0.2, max_position_embeddings=128, **labels)
        return t.DistilBertForSequenceClassification(cfg)
    raise ValueError(arch)


@pytest.fixture(scope="session")
def make_cross_folder(tmp_path_factory, minilm_path):
    """``make(arch="bert", num_labels=1) -> folder``: a transformers folder (safetensors) with random weights."""
    built: dict[tuple[str, int], Path] = {}

    def make(arch: str = "bert", num_labels: int = 1) -> Path:
        if (arch, num_labels) in built:
            return built[arch, num_labels]
        from transformers import AutoTokenizer

        tokenizer = _roberta_tokenizer() if arch == "roberta" else AutoTokenizer.from_pretrained(minilm_path)
        torch.manual_seed(1000 + len(built))
        folder = tmp_path_factory.mktemp(f"cross_{arch}_{num_labels}")
        _model(arch, num_labels, len(tokenizer)).save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        built[arch, num_labels] = folder
        return folder

    return make
