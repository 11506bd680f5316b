"""Read and write cross-encoder folders in the layouts sentence-transformers uses.

Two layouts load:

- a plain transformers sequence-classification folder (how sentence-transformers 4.x/5.x saved
  cross-encoders; the activation sits in ``config.json`` under ``sentence_transformers.activation_fn``,
  or the older ``sbert_ce_default_activation_function`` key);
- a sentence-transformers 6.x folder: ``modules.json`` with one Transformer module,
  ``config_sentence_transformers.json`` with ``model_type: "CrossEncoder"`` (activation, prompts) and
  ``sentence_bert_config.json`` (``max_seq_length``, ``do_lower_case``).

Any other ``modules.json`` folder (e.g. a bi-encoder) loads as the first layout, with its
sentence-transformers settings ignored, as sentence-transformers does. :func:`save_cross_encoder` writes
the 6.x layout plus the ``config.json`` key the older versions read.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from st_plugins.core import batching
from st_plugins.core.backbone import load_tokenizer
from st_plugins.core.heads import build_activation
from st_plugins.core.resolve import resolve_model_path
from st_plugins.core.saving import version_info, write_json
from st_plugins.errors import InputTypeError, ModelFormatError, ModelNotFoundError

__all__ = [
    "CrossFolder",
    "activation_name",
    "initial_max_length",
    "load_cross_tokenizer",
    "locate_cross_encoder",
    "model_input_keys",
    "read_cross_folder",
    "resolve_activation",
    "save_cross_encoder",
]

LEGACY_ACTIVATION_KEY = "sbert_ce_default_activation_function"
_TRANSFORMER_TYPE = "sentence_transformers.base.modules.transformer.Transformer"


@dataclass(frozen=True)
class CrossFolder:
    """What a cross-encoder folder says about itself (read from JSON, before any weights load)."""

    transformer_path: Path
    st_activation: str | None = None  # config_sentence_transformers.json "activation_fn"
    hf_activation: str | None = None  # config.json sentence_transformers.activation_fn, else the legacy key
    max_seq_length: int | None = None  # sentence_bert_config.json
    do_lower_case: bool = False
    is_classifier: bool = False  # config.json architectures name a *ForSequenceClassification
    default_prompt_name: str | None = None

    def config_kwargs(self, given: dict[str, Any] | None, num_labels: int | None) -> dict[str, Any]:
        """``AutoConfig`` kwargs: ``num_labels`` when given, 1 for a backbone without a classifier head."""
        kwargs = dict(given or {})
        if num_labels is not None:
            kwargs["num_labels"] = num_labels
        elif not self.is_classifier:
            kwargs.setdefault("num_labels", 1)
        return kwargs


def locate_cross_encoder(name: Any, cache_folder: Any, revision: str | None, local_files_only: bool) -> Path:
    """:func:`resolve_model_path`, then hub repo ``cross-encoder/<name>`` for a bare name (as sentence-transformers)."""
    kwargs = {"cache_folder": cache_folder, "revision": revision, "local_files_only": local_files_only}
    try:
        return resolve_model_path(name, **kwargs)
    except ModelNotFoundError as first:
        text = os.fspath(name)
        if "/" in text or os.sep in text or text.startswith((".", "~")):
            raise
        try:
            return resolve_model_path(f"cross-encoder/{text}", **kwargs)
        except ModelNotFoundError:
            raise ModelNotFoundError(f"{first}\nAlso tried hub repo 'cross-encoder/{text}'.") from None


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path} is not valid JSON ({exc}). Repair or re-save the model folder.") from exc


def read_cross_folder(root: Path) -> CrossFolder:
    """Describe the cross-encoder in ``root``.

    Raises:
        ModelFormatError: No ``config.json``, a causal-LM reranker, or a 6.x folder whose modules are not
            exactly one sequence-classification Transformer.
    """
    st_config = _json(root / "config_sentence_transformers.json") or {}
    modules = _json(root / "modules.json")
    transformer, module_config = root, {}
    if modules and st_config.get("model_type") == "CrossEncoder":
        types = [m.get("type", "?") for m in modules]
        if len(modules) != 1 or not types[0].endswith("Transformer"):
            raise ModelFormatError(
                f"{root} is a CrossEncoder with modules {types}; only one Transformer module with a "
                "sequence-classification head is supported."
            )
        transformer = root / modules[0].get("path", "")
        module_config = _json(transformer / "sentence_bert_config.json") or {}
        task = module_config.get("transformer_task", "sequence-classification")
        if task != "sequence-classification":
            raise ModelFormatError(
                f"{transformer} has transformer_task {task!r}; a CrossEncoder needs 'sequence-classification'."
            )
    else:
        st_config = {}  # sentence-transformers ignores a bi-encoder's settings when loading it as a cross-encoder
    hf = _json(transformer / "config.json")
    if not isinstance(hf, dict):
        raise ModelFormatError(f"{transformer} has no config.json; it is not a transformers model folder.")
    architectures = hf.get("architectures") or []
    if architectures and str(architectures[0]).endswith("ForCausalLM"):
        raise ModelFormatError(
            f"{transformer} is a causal language model ({architectures[0]}); causal-LM rerankers are not "
            "supported. Use a sequence-classification checkpoint (BERT, RoBERTa, DistilBERT, ELECTRA, ...)."
        )
    block = hf.get("sentence_transformers")
    if isinstance(block, dict) and "activation_fn" in block:
        hf_activation = block["activation_fn"]
    else:
        hf_activation = hf.get(LEGACY_ACTIVATION_KEY)
    if st_config.get("default_prompt_name"):
        warnings.warn(f"{root}: cross-encoder prompts are not supported; the default prompt "
                      f"{st_config['default_prompt_name']!r} is not applied.", UserWarning, stacklevel=3)
    return CrossFolder(
        transformer_path=transformer,
        st_activation=st_config.get("activation_fn"),
        hf_activation=hf_activation,
        max_seq_length=module_config.get("max_seq_length"),
        do_lower_case=bool(module_config.get("do_lower_case", False)),
        is_classifier=any(str(a).endswith("ForSequenceClassification") for a in architectures),
        default_prompt_name=st_config.get("default_prompt_name"),
    )


def load_cross_tokenizer(folder: CrossFolder, tokenizer_kwargs: dict[str, Any] | None, trust_remote_code: bool):
    """The folder's tokenizer (``tokenizer_kwargs`` go to ``AutoTokenizer.from_pretrained``), lower-casing if asked."""
    if tokenizer_kwargs:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(
            str(folder.transformer_path), trust_remote_code=trust_remote_code, **tokenizer_kwargs
        )
    else:
        tokenizer = load_tokenizer(folder.transformer_path, None, trust_remote_code)
    if folder.do_lower_case:
        batching.add_lowercase(tokenizer)
    return tokenizer


def initial_max_length(folder: CrossFolder, max_length: int | None, tokenizer_kwargs: dict[str, Any] | None,
                       config: Any, tokenizer: Any) -> int:
    """``max_length``, else ``tokenizer_kwargs["model_max_length"]``, else ``sentence_bert_config.json``'s,
    else the tokenizer's ``model_max_length`` capped at ``max_position_embeddings`` (as sentence-transformers)."""
    explicit = max_length or (tokenizer_kwargs or {}).get("model_max_length") or folder.max_seq_length
    if explicit:
        return int(explicit)
    limit = getattr(config, "max_position_embeddings", None)
    tok_max = tokenizer.model_max_length
    return int(min(tok_max, limit) if limit is not None and limit != -1 else tok_max)


def resolve_activation(
    explicit: Callable | None, folder: CrossFolder, num_labels: int, trust_remote_code: bool
) -> Callable:
    """Pick the activation as sentence-transformers does.

    Order: ``explicit``; ``config_sentence_transformers.json``; ``config.json``
    (``sentence_transformers.activation_fn``, else the legacy key); else ``Sigmoid`` for one label and
    ``Identity`` otherwise. A dotted path outside ``torch.`` is skipped with a warning unless
    ``trust_remote_code``.

    Example:
        >>> resolve_activation(None, CrossFolder(Path(".")), num_labels=3, trust_remote_code=False)
        Identity()
    """
    if explicit is not None:
        if not callable(explicit):
            raise InputTypeError(
                f"`activation_fn` must be callable (e.g. torch.nn.Sigmoid()); got {type(explicit).__name__}."
            )
        return explicit
    sources = (("config_sentence_transformers.json", folder.st_activation), ("config.json", folder.hf_activation))
    for source, dotted in sources:
        if not dotted:
            continue
        if dotted.startswith("torch.") or trust_remote_code:
            return build_activation(dotted, trust_remote_code=True)
        warnings.warn(
            f"Activation {dotted!r} from {source} is not a torch class and was not imported; using the default "
            "activation instead. Pass `trust_remote_code=True` to import it.",
            UserWarning,
            stacklevel=3,
        )
    return nn.Sigmoid() if num_labels == 1 else nn.Identity()


def model_input_keys(model: Any) -> tuple[str, ...]:
    """The features ``model.forward`` declares (DistilBERT takes no ``token_type_ids``); all when it declares none."""
    keys = ("input_ids", "attention_mask", "token_type_ids")
    params = inspect.signature(model.forward).parameters
    return tuple(k for k in keys if k in params) or keys


def activation_name(fn: Any) -> str | None:
    """Dotted class path of an activation module (what the config files store), else ``None``.

    Example:
        >>> activation_name(nn.Sigmoid())
        'torch.nn.modules.activation.Sigmoid'
    """
    cls = fn if isinstance(fn, type) else type(fn)
    if not issubclass(cls, nn.Module):
        return None  # a plain function cannot be re-imported by name; loaders fall back to the default
    return f"{cls.__module__}.{cls.__name__}"


def save_cross_encoder(model: Any, path: Path) -> None:
    """Write ``model`` (a :class:`~st_plugins.CrossEncoder`) so sentence-transformers 4.x-6.x load it."""
    from st_plugins import __version__

    path.mkdir(parents=True, exist_ok=True)
    name = activation_name(model.activation_fn)
    model.config.sentence_transformers = {"activation_fn": name, "version": __version__}
    model.model.save_pretrained(str(path), safe_serialization=True)
    model.tokenizer.model_max_length = model.max_length
    model.tokenizer.save_pretrained(str(path))
    write_json(path / "sentence_bert_config.json", {
        "transformer_task": "sequence-classification",
        "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
        "module_output_name": "scores",
        "max_seq_length": model.max_length,
        "do_lower_case": model.folder.do_lower_case,
    })
    write_json(path / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": _TRANSFORMER_TYPE}])
    write_json(path / "config_sentence_transformers.json", {
        "model_type": "CrossEncoder",
        "__version__": version_info(),
        "activation_fn": name,
        "prompts": {},
        "default_prompt_name": None,
    })
