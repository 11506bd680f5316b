"""Write model folders in sentence-transformers' format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["save_bi_encoder", "save_cross_encoder", "write_json", "version_info"]

_TRANSFORMER_TYPE = "sentence_transformers.base.modules.transformer.Transformer"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def version_info() -> dict[str, str]:
    import torch
    import transformers

    from st_plugins import __version__

    return {"st_plugins": __version__, "transformers": transformers.__version__, "pytorch": torch.__version__}


def save_bi_encoder(model: Any, path: Path) -> None:
    """Save ``model`` (a :class:`~st_plugins.SentenceTransformer`) to ``path``.

    Layout: transformer + tokenizer at the root, ``{i}_Pooling``, ``{i}_Dense``, ``{i}_Normalize``
    in the original module order, with the classic ``sentence_transformers.models.*`` type names.
    """
    engine = model._torch_module()  # read only: saving does not hand the weights out (needs the torch extra)
    from st_plugins.core.heads import Dense
    from st_plugins.core.spec import PoolingSpec

    path.mkdir(parents=True, exist_ok=True)
    engine.auto_model.save_pretrained(str(path), safe_serialization=True)
    model.tokenizer.save_pretrained(str(path))
    write_json(path / "sentence_bert_config.json",
               {"max_seq_length": model.max_seq_length, "do_lower_case": model.spec.do_lower_case})
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    heads = iter(engine.heads)
    hidden = engine.auto_model.config.hidden_size
    for i, step in enumerate(model.spec.steps, start=1):
        if isinstance(step, PoolingSpec):
            kind, folder = "Pooling", path / f"{i}_Pooling"
            write_json(folder / "config.json", {"embedding_dimension": hidden, "pooling_mode": list(step.modes) if len(step.modes) > 1 else step.modes[0],
                                                "include_prompt": step.include_prompt})
        else:
            head = next(heads)
            kind = "Dense" if isinstance(head, Dense) else "Normalize"
            folder = path / f"{i}_{kind}"
            head.save(folder) if isinstance(head, Dense) else folder.mkdir(exist_ok=True)
        modules.append({"idx": i, "name": str(i), "path": folder.name, "type": f"sentence_transformers.models.{kind}"})
    write_json(path / "modules.json", modules)
    write_json(path / "config_sentence_transformers.json", {
        "__version__": version_info(),
        "model_type": "SentenceTransformer",
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
        "similarity_fn_name": model.similarity_fn_name,
    })


def _patch_json(path: Path, **updates: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    write_json(path, {**data, **updates})


def save_cross_encoder(model: Any, path: Path) -> None:
    """Write ``model`` (a :class:`~st_plugins.CrossEncoder`) so sentence-transformers 4.x-6.x load it.

    The live model is not changed: the activation and the max length go into the written files only.
    """
    from st_plugins import __version__

    path.mkdir(parents=True, exist_ok=True)
    name = model._activation_path if model._activation is None else _activation_path(model._activation)
    model._torch_module().model.save_pretrained(str(path), safe_serialization=True)  # read only
    _patch_json(path / "config.json", sentence_transformers={"activation_fn": name, "version": __version__})
    model.tokenizer.save_pretrained(str(path))
    _patch_json(path / "tokenizer_config.json", model_max_length=model.max_length)
    write_json(path / "sentence_bert_config.json", {
        "transformer_task": "sequence-classification",
        "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
        "module_output_name": "scores",
        "max_seq_length": model.max_length,
        "do_lower_case": model.spec.do_lower_case,
    })
    write_json(path / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": _TRANSFORMER_TYPE}])
    write_json(path / "config_sentence_transformers.json", {
        "model_type": "CrossEncoder",
        "__version__": version_info(),
        "activation_fn": name,
        "prompts": {},
        "default_prompt_name": None,
    })


def _activation_path(fn: Any) -> str | None:
    from st_plugins.core.cross_encoder import activation_name

    return activation_name(fn)
