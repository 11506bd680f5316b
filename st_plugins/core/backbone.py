"""Load a transformers tokenizer and model safely (safetensors only unless opted in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from st_plugins.errors import InputValueError, ModelFormatError, UnsafeCheckpointError

__all__ = ["check_weights", "check_remote_code", "check_safetensors", "load_tokenizer", "load_transformer",
           "resolve_dtype"]

_PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


def check_weights(folder: Path, allow_pickle: bool) -> bool:
    """Return whether safetensors weights are used; refuse pickle unless ``allow_pickle``.

    Raises:
        UnsafeCheckpointError: Only a pickle checkpoint exists and ``allow_pickle`` is False.
        ModelFormatError: No weights at all.
    """
    if any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file():
        for path in sorted(folder.glob("*.safetensors")):
            check_safetensors(path)
        return True
    pickles = [name for name in _PICKLE_FILES if (folder / name).is_file()]
    if not pickles:
        raise ModelFormatError(f"{folder} holds no model weights (no *.safetensors, no pytorch_model.bin).")
    if not allow_pickle:
        raise UnsafeCheckpointError(
            f"{folder} only has a pickle checkpoint ({pickles[0]}), which can run arbitrary code when loaded. "
            "Convert it to safetensors, or pass `allow_pickle=True` if you trust its source."
        )
    return False


def check_safetensors(path: Path) -> None:
    """Refuse a truncated or corrupt safetensors file from its header alone (no tensor is read).

    The format is 8 bytes of header length, a JSON header giving each tensor's byte range, then the data:
    the last range must end exactly at the end of the file.

    Raises:
        ModelFormatError: The header is unreadable or the data is shorter or longer than it says.
    """
    import json
    import struct

    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > size - 8:
                raise ValueError(f"header of {length} bytes in a {size}-byte file")
            header = json.loads(fh.read(length))
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ModelFormatError(f"{path} is not a readable safetensors file ({exc}). It is truncated or corrupt: "
                               "download or save the model again.") from None
    if 8 + length + end != size:
        raise ModelFormatError(f"{path} is truncated or corrupt: its header describes {8 + length + end} bytes, the "
                               f"file has {size}. Download or save the model again.")


def check_remote_code(folder: Path, config: dict[str, Any], trust_remote_code: bool) -> None:
    """Refuse a ``config.json`` that asks for model code from the folder or the hub (``auto_map``) unless trusted.

    transformers would otherwise load its own class for the ``model_type`` and silently ignore the code the
    model's authors meant to run, so the vectors would not be theirs.

    Raises:
        UnsafeCheckpointError: ``auto_map`` is set and ``trust_remote_code`` is False.
    """
    auto_map = config.get("auto_map")
    if auto_map and not trust_remote_code:
        shown = ", ".join(f"{k} -> {v}" for k, v in dict(auto_map).items()) if isinstance(auto_map, dict) else auto_map
        raise UnsafeCheckpointError(
            f"{folder / 'config.json'} asks for custom model code (auto_map: {shown}), which runs arbitrary Python. "
            "Pass `trust_remote_code=True` if you trust its source (it then runs on torch)."
        )


def resolve_dtype(dtype: Any):
    """Map ``"float32"``/``"bfloat16"``/``"float16"``/``"auto"``/torch dtype to a torch dtype (or "auto")."""
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name in {"float32", "float16", "bfloat16", "float64"}:
            return getattr(torch, name)
    raise InputValueError(
        f"`model_kwargs['dtype']` must be one of 'float32', 'bfloat16', 'float16', 'auto' or a torch dtype; got {dtype!r}."
    )


def load_tokenizer(folder: Path, max_length: int | None, trust_remote_code: bool,
                   tokenizer_kwargs: dict[str, Any] | None = None):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code, **(tokenizer_kwargs or {}))
    if max_length is not None:
        tokenizer.model_max_length = max_length
    return tokenizer


def load_transformer(
    folder: Path,
    *,
    task: str = "feature-extraction",
    model_kwargs: dict[str, Any] | None = None,
    config_kwargs: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
):
    """Load the transformers model in ``folder`` in eval mode.

    Args:
        task: ``"feature-extraction"`` (AutoModel) or ``"sequence-classification"``.
        model_kwargs: ``dtype`` and ``attn_implementation`` (others are passed through).
    """
    import transformers

    safe = check_weights(folder, allow_pickle)
    kwargs = dict(model_kwargs or {})
    kwargs["dtype"] = resolve_dtype(kwargs.pop("dtype", kwargs.pop("torch_dtype", None)))
    auto = transformers.AutoModel if task == "feature-extraction" else transformers.AutoModelForSequenceClassification
    config = transformers.AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code, **(config_kwargs or {}))
    model = auto.from_pretrained(
        str(folder), config=config, use_safetensors=safe, trust_remote_code=trust_remote_code, **kwargs
    )
    model.eval()
    return model
