"""A bi-encoder folder described as data: a frozen :class:`ModelSpec` read from its JSON files.

Only the description lives here; :mod:`st_plugins.core.bi_encoder` turns it into a runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_plugins.errors import ModelFormatError

__all__ = ["PoolingSpec", "DenseSpec", "ModelSpec", "read_spec", "POOLING_MODES"]

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
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

    @property
    def pooling(self) -> PoolingSpec:
        return next(s for s in self.steps if isinstance(s, PoolingSpec))

    @property
    def normalizes(self) -> bool:
        return any(s == "normalize" for s in self.steps)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path} is not valid JSON ({exc}). Repair or re-save the model.") from exc


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
    cfg = _read_json(folder / "config.json")
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
            return _read_json(folder / name)
    return {}


def read_spec(root: str | Path) -> ModelSpec:
    """Read a sentence-transformers folder (or a plain transformers folder: mean pooling).

    Raises:
        ModelFormatError: The folder has no ``config.json`` for its transformer or an unknown module.
    """
    root = Path(root)
    st_config = _read_json(root / "config_sentence_transformers.json") if (root / "config_sentence_transformers.json").is_file() else {}
    common = dict(
        prompts=dict(st_config.get("prompts") or {}),
        default_prompt_name=st_config.get("default_prompt_name"),
        similarity_fn_name=st_config.get("similarity_fn_name"),
    )
    if not (root / "modules.json").is_file():
        _require_config(root)
        settings = _transformer_settings(root)
        return ModelSpec(root=root, transformer_path=root, max_seq_length=settings.get("max_seq_length"),
                         do_lower_case=bool(settings.get("do_lower_case", False)), **common)
    transformer_path, settings, steps = None, {}, []
    for entry in sorted(_read_json(root / "modules.json"), key=lambda e: e.get("idx", 0)):
        kind, folder = _module_kind(entry["type"]), root / entry.get("path", "")
        if kind == "Transformer":
            transformer_path, settings = folder, _transformer_settings(folder)
        elif kind == "Pooling":
            steps.append(pooling_from_config(_read_json(folder / "config.json")))
        elif kind == "Dense":
            steps.append(_dense_spec(folder))
        else:
            steps.append("normalize")
    if transformer_path is None:
        raise ModelFormatError(f"{root / 'modules.json'} has no Transformer module.")
    _require_config(transformer_path)
    if not any(isinstance(s, PoolingSpec) for s in steps):
        raise ModelFormatError(f"{root / 'modules.json'} has no Pooling module; st_plugins needs one.")
    return ModelSpec(root=root, transformer_path=transformer_path, steps=tuple(steps),
                     max_seq_length=settings.get("max_seq_length"),
                     do_lower_case=bool(settings.get("do_lower_case", False)), has_modules_json=True, **common)


def _require_config(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise ModelFormatError(
            f"{folder} has no config.json: it is not a transformers or sentence-transformers model folder."
        )
