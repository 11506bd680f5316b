"""Model folders described as data: frozen specs read from their JSON files, before any weights load.

:class:`ModelSpec` describes a bi-encoder (modules, pooling, heads, prompts, max length),
:class:`CrossSpec` a cross-encoder (activation, max length, head). Only the description lives here;
:mod:`st_plugins.core.bi_encoder` and :mod:`st_plugins.core.cross_encoder` turn them into models.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_plugins.core.runtime.pooling import POOLING_MODES
from st_plugins.errors import ModelFormatError

__all__ = ["PoolingSpec", "DenseSpec", "ModelSpec", "CrossSpec", "read_spec", "read_cross_spec", "read_json", "POOLING_MODES",
           "LEGACY_ACTIVATION_KEY"]

LEGACY_ACTIVATION_KEY = "sbert_ce_default_activation_function"
_LEGACY_POOLING_KEYS = {  # sentence-transformers' concatenation order for legacy configs
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class PoolingSpec:
    """How token vectors become one vector: ``modes`` are concatenated in order."""

    modes: tuple[str, ...] = ("mean",)
    include_prompt: bool = True
    dimension: int | None = None


@dataclass(frozen=True)
class DenseSpec:
    """A linear layer (+ activation) applied to the sentence embedding."""

    path: Path
    in_features: int
    out_features: int
    bias: bool = True
    activation: str = "torch.nn.modules.activation.Tanh"


@dataclass(frozen=True)
class ModelSpec:
    """Everything about a bi-encoder folder that is not weights."""

    root: Path
    transformer_path: Path
    steps: tuple[Any, ...] = (PoolingSpec(),)  # PoolingSpec | DenseSpec | "normalize"
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None
    has_modules_json: bool = False
    config: dict[str, Any] = field(default_factory=dict, compare=False)  # the transformer's config.json

    @property
    def hidden_size(self) -> int:
        return int(self.config.get("hidden_size") or self.config.get("dim") or 0)

    @property
    def dimension(self) -> int:
        """The sentence embedding's size: the last Dense's outputs, else hidden size x pooling modes."""
        dense = [s for s in self.steps if isinstance(s, DenseSpec)]
        return dense[-1].out_features if dense else self.hidden_size * len(self.pooling.modes)

    @property
    def pooling(self) -> PoolingSpec:
        return next(s for s in self.steps if isinstance(s, PoolingSpec))

    @property
    def normalizes(self) -> bool:
        return any(s == "normalize" for s in self.steps)


def read_json(path: Path, objects_only: bool = False, missing: dict[str, Any] | None = None,
              fix: str = "Repair or re-save the model.") -> Any:
    """A model folder's JSON file; malformed JSON is a :class:`ModelFormatError` naming the file and ``fix``.

    Args:
        objects_only: Anything but a JSON object is a :class:`ModelFormatError` too.
        missing: Returned (a copy) when the file does not exist; ``None``: the ``OSError`` propagates.
    """
    path = Path(path)
    if missing is not None and not path.is_file():
        return dict(missing)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path} is not valid JSON ({exc}). {fix}") from exc
    if objects_only and not isinstance(data, dict):
        raise ModelFormatError(f"{path} must hold a JSON object, not {type(data).__name__}. {fix}")
    return data




def pooling_from_config(config: dict[str, Any]) -> PoolingSpec:
    """Read a Pooling config (new ``pooling_mode`` or legacy ``pooling_mode_*`` keys).

    Example:
        >>> pooling_from_config({"pooling_mode_cls_token": True, "pooling_mode_max_tokens": True}).modes
        ('cls', 'max')
        >>> pooling_from_config({"pooling_mode": "lasttoken"}).modes
        ('lasttoken',)
    """
    mode = config.get("pooling_mode")
    if mode is None:
        modes = tuple(m for key, m in _LEGACY_POOLING_KEYS.items() if config.get(key))
        modes = modes or ("mean",)
    else:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    bad = [m for m in modes if m not in POOLING_MODES]
    if bad:
        raise ModelFormatError(f"Unknown pooling mode(s) {bad}; allowed: {POOLING_MODES}.")
    dim = config.get("embedding_dimension", config.get("word_embedding_dimension"))
    return PoolingSpec(modes=modes, include_prompt=bool(config.get("include_prompt", True)), dimension=dim)


def _module_kind(type_name: str) -> str:
    kind = type_name.rsplit(".", 1)[-1]
    if kind not in {"Transformer", "Pooling", "Dense", "Normalize"}:
        raise ModelFormatError(
            f"modules.json names module type {type_name!r}, which st_plugins does not support. "
            "Supported: Transformer, Pooling, Dense, Normalize."
        )
    return kind


def _dense_spec(folder: Path) -> DenseSpec:
    cfg = read_json(folder / "config.json")
    if cfg.get("use_residual"):  # sentence-transformers 6: out = activation(linear(x)) + x (or a projection of x)
        raise ModelFormatError(
            f"{folder / 'config.json'} asks for a residual Dense layer (use_residual=true), which st_plugins does not "
            "support yet; its vectors would differ from sentence-transformers'. Use sentence-transformers for this "
            "model, or save it without use_residual."
        )
    return DenseSpec(
        path=folder,
        in_features=int(cfg["in_features"]),
        out_features=int(cfg["out_features"]),
        bias=bool(cfg.get("bias", True)),
        activation=cfg.get("activation_function") or "torch.nn.modules.linear.Identity",
    )


def _transformer_settings(folder: Path) -> dict[str, Any]:
    for name in ("sentence_bert_config.json", "sentence_transformers_config.json"):
        if (folder / name).is_file():
            return read_json(folder / name)
    return {}


def read_spec(root: str | Path) -> ModelSpec:
    """Read a sentence-transformers folder (or a plain transformers folder: mean pooling).

    Raises:
        ModelFormatError: The folder has no ``config.json`` for its transformer or an unknown module.
    """
    root = Path(root)
    st_config = read_json(root / "config_sentence_transformers.json") if (root / "config_sentence_transformers.json").is_file() else {}
    common = dict(
        prompts=dict(st_config.get("prompts") or {}),
        default_prompt_name=st_config.get("default_prompt_name"),
        similarity_fn_name=st_config.get("similarity_fn_name"),
    )
    if not (root / "modules.json").is_file():
        settings = _transformer_settings(root)
        return ModelSpec(root=root, transformer_path=root, max_seq_length=settings.get("max_seq_length"),
                         do_lower_case=bool(settings.get("do_lower_case", False)), config=_config(root), **common)
    transformer_path, settings, steps = None, {}, []
    for entry in sorted(_modules(root), key=lambda e: e.get("idx", 0)):
        kind, folder = _module_kind(entry["type"]), root / entry.get("path", "")
        if kind == "Transformer":
            transformer_path, settings = folder, _transformer_settings(folder)
        elif kind == "Pooling":
            steps.append(pooling_from_config(read_json(folder / "config.json")))
        elif kind == "Dense":
            steps.append(_dense_spec(folder))
        else:
            steps.append("normalize")
    if transformer_path is None:
        raise ModelFormatError(f"{root / 'modules.json'} has no Transformer module.")
    config = _config(transformer_path)
    if not any(isinstance(s, PoolingSpec) for s in steps):
        raise ModelFormatError(f"{root / 'modules.json'} has no Pooling module; st_plugins needs one.")
    return ModelSpec(root=root, transformer_path=transformer_path, steps=tuple(steps),
                     max_seq_length=settings.get("max_seq_length"),
                     do_lower_case=bool(settings.get("do_lower_case", False)), has_modules_json=True, config=config,
                     **common)


def _modules(root: Path) -> list[dict[str, Any]]:
    """``modules.json``: a list of ``{"type": ..., "path": ...}`` objects, or a :class:`ModelFormatError`."""
    modules = read_json(root / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in modules):
        raise ModelFormatError(f"{root / 'modules.json'} must hold a list of objects with a \"type\" each "
                               f"(as sentence-transformers writes it); got {json.dumps(modules)[:80]}. Repair or re-save "
                               "the model.")
    return modules


def _config(folder: Path) -> dict[str, Any]:
    if not (folder / "config.json").is_file():
        raise ModelFormatError(
            f"{folder} has no config.json: it is not a transformers or sentence-transformers model folder."
        )
    config = read_json(folder / "config.json")
    if not isinstance(config, dict):
        raise ModelFormatError(f"{folder / 'config.json'} must hold a JSON object.")
    return config


@dataclass(frozen=True)
class CrossSpec:
    """What a cross-encoder folder says about itself.

    Two layouts load, as in sentence-transformers: a plain transformers sequence-classification folder
    (the activation in ``config.json`` under ``sentence_transformers.activation_fn`` or the legacy
    key), and a 6.x folder (``modules.json`` with one Transformer module, ``config_sentence_transformers.json``
    with ``model_type: "CrossEncoder"``, ``sentence_bert_config.json``). Any other ``modules.json`` folder
    (a bi-encoder, say) loads as the first layout with its sentence-transformers settings ignored.
    """

    root: Path
    transformer_path: Path
    st_activation: str | None = None  # config_sentence_transformers.json "activation_fn"
    hf_activation: str | None = None  # config.json sentence_transformers.activation_fn, else the legacy key
    max_seq_length: int | None = None  # sentence_bert_config.json
    do_lower_case: bool = False
    is_classifier: bool = False  # config.json architectures name a *ForSequenceClassification
    default_prompt_name: str | None = None
    config: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def num_labels(self) -> int:
        """Labels of the folder's head (1 for a bare backbone, which gets a new 1-label head)."""
        if not self.is_classifier:
            return 1
        return int(self.config.get("num_labels") or len(self.config.get("id2label") or {}) or 2)

    def config_kwargs(self, given: dict[str, Any] | None, num_labels: int | None) -> dict[str, Any]:
        """``AutoConfig`` kwargs: ``num_labels`` when given, 1 for a backbone without a classifier head."""
        kwargs = dict(given or {})
        if num_labels is not None:
            kwargs["num_labels"] = num_labels
        elif not self.is_classifier:
            kwargs.setdefault("num_labels", 1)
        return kwargs


def _module_layout(root: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """``(transformer folder, sentence_bert_config, config_sentence_transformers)`` of a cross-encoder."""
    st_config = read_json(root / "config_sentence_transformers.json") if (root / "config_sentence_transformers.json").is_file() else {}
    modules = _modules(root) if (root / "modules.json").is_file() else None
    if not (modules and st_config.get("model_type") == "CrossEncoder"):
        return root, {}, {}  # sentence-transformers ignores a bi-encoder's settings when loading it as a cross-encoder
    types = [m.get("type", "?") for m in modules]
    if len(modules) != 1 or not types[0].endswith("Transformer"):
        raise ModelFormatError(
            f"{root} is a CrossEncoder with modules {types}; only one Transformer module with a "
            "sequence-classification head is supported."
        )
    transformer = root / modules[0].get("path", "")
    module_config = _transformer_settings(transformer)
    task = module_config.get("transformer_task", "sequence-classification")
    if task != "sequence-classification":
        raise ModelFormatError(f"{transformer} has transformer_task {task!r}; a CrossEncoder needs 'sequence-classification'.")
    return transformer, module_config, st_config


def read_cross_spec(root: str | Path) -> CrossSpec:
    """Describe the cross-encoder in ``root``.

    Raises:
        ModelFormatError: No ``config.json``, a causal-LM reranker, or a 6.x folder whose modules are not
            exactly one sequence-classification Transformer.
    """
    root = Path(root)
    transformer, module_config, st_config = _module_layout(root)
    hf = _config(transformer)
    architectures = hf.get("architectures") or []
    if architectures and str(architectures[0]).endswith("ForCausalLM"):
        raise ModelFormatError(
            f"{transformer} is a causal language model ({architectures[0]}); causal-LM rerankers are not "
            "supported. Use a sequence-classification checkpoint (BERT, RoBERTa, DistilBERT, ELECTRA, ...)."
        )
    block = hf.get("sentence_transformers")
    hf_activation = block["activation_fn"] if isinstance(block, dict) and "activation_fn" in block else hf.get(LEGACY_ACTIVATION_KEY)
    if st_config.get("default_prompt_name"):
        warnings.warn(f"{root}: cross-encoder prompts are not supported; the default prompt "
                      f"{st_config['default_prompt_name']!r} is not applied.", UserWarning, stacklevel=3)
    return CrossSpec(
        root=root, transformer_path=transformer, st_activation=st_config.get("activation_fn"),
        hf_activation=hf_activation, max_seq_length=module_config.get("max_seq_length"),
        do_lower_case=bool(module_config.get("do_lower_case", False)),
        is_classifier=any(str(a).endswith("ForSequenceClassification") for a in architectures),
        default_prompt_name=st_config.get("default_prompt_name"), config=hf,
    )
