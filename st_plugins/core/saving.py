"""Write model folders in sentence-transformers' format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["save_bi_encoder", "write_json", "version_info"]


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
    from st_plugins.core.heads import Dense
    from st_plugins.core.spec import PoolingSpec

    path.mkdir(parents=True, exist_ok=True)
    model.auto_model.save_pretrained(str(path), safe_serialization=True)
    model.tokenizer.save_pretrained(str(path))
    write_json(path / "sentence_bert_config.json",
               {"max_seq_length": model.max_seq_length, "do_lower_case": model.spec.do_lower_case})
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    heads = iter(model.heads)
    hidden = model.auto_model.config.hidden_size
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
