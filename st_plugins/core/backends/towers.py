"""torch -> ONNX for image-text models: the text tower and the vision tower, each one graph.

``text.onnx`` takes the tokenizer's features (``input_ids``, ``attention_mask``, and ``token_type_ids`` when
the text tower takes them) and returns ``text_embeds`` = ``get_text_features`` (projected, not normalized);
``vision.onnx`` takes ``pixel_values`` (``N x 3 x H x W``, the image processor's output) and returns
``image_embeds`` = ``get_image_features``. Batch (and sequence) axes are dynamic. Each graph is checked
against the torch model on probe batches (texts of mixed lengths, images of several sizes) before it is
published, like the text graphs (:mod:`.export`).
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.core.backends.export import EXACT_TOLERANCE, OPSET
from st_plugins.errors import BackendError

__all__ = ["load_image_text_model", "tower_output", "write_towers"]


def load_image_text_model(model_dir: Path, allow_pickle: bool = False) -> Any:
    """The transformers model of ``model_dir`` (fp32, eval, eager attention; no remote code)."""
    from transformers import AutoModel

    kwargs: dict[str, Any] = {"use_safetensors": None if allow_pickle else True}
    try:
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", **kwargs)
    except (TypeError, ValueError):
        model = AutoModel.from_pretrained(str(model_dir), **kwargs)
    return model.float().eval()


def tower_output(out: Any) -> Any:
    """``get_*_features``' tensor: transformers 5 returns an output whose ``pooler_output`` holds it."""
    if hasattr(out, "pooler_output") and out.pooler_output is not None:
        return out.pooler_output
    return out[0] if isinstance(out, (tuple, list)) else out


def text_inputs(model: Any, available: tuple[str, ...]) -> tuple[str, ...]:
    """The tokenizer features ``get_text_features`` takes, in a fixed order."""
    params = inspect.signature(model.get_text_features).parameters
    return tuple(n for n in ("input_ids", "attention_mask", "token_type_ids") if n in available and n in params)


def _wrapper(model: Any, method: str, names: tuple[str, ...]) -> Any:
    import torch

    class Tower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args):
            return tower_output(getattr(self.model, method)(**dict(zip(names, args))))

    return Tower().eval()


def _reference(model: Any, method: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return tower_output(getattr(model, method)(**{k: torch.from_numpy(v) for k, v in feeds.items()})).float().numpy()


def _export_one(model: Any, method: str, probes: list[dict[str, np.ndarray]], path: Path, output: str,
                dynamic: dict[str, dict[int, str]]) -> float:
    import torch

    from st_plugins.core.runtime.session import make_session

    names = tuple(probes[0])
    args = tuple(torch.from_numpy(probes[0][n]) for n in names)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_wrapper(model, method, names), args, str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(names), output_names=[output], dynamic_axes={**dynamic, output: {0: "batch"}},
                          do_constant_folding=True, external_data=False)
    session = make_session(path, threads=1)
    worst = 0.0
    for feeds in probes:
        got, ref = session.run(None, feeds)[0], _reference(model, method, feeds)
        if got.shape != ref.shape:
            raise BackendError(f"The {output} graph gives shape {got.shape}, torch {ref.shape}; not used.")
        worst = max(worst, float(np.abs(got - ref).max() / max(1.0, float(np.abs(ref).max()))))
    if worst > EXACT_TOLERANCE:
        path.unlink(missing_ok=True)
        raise BackendError(f"The ONNX export of {method} differs from torch by {worst:.2e} (> {EXACT_TOLERANCE}).")
    return worst


def _probe_images(processor: Any) -> list[dict[str, np.ndarray]]:
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = [(40, 30), (30, 40), (64, 64), (17, 23), (300, 200)]
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
    return [{"pixel_values": processor(images[:3])}, {"pixel_values": processor(images[3:])}]


def write_towers(model_dir: Path, tokenizer: Any, processor: Any, folder: Path, allow_pickle: bool = False,
                 tokenizer_outputs: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")) -> dict:
    """Export both towers of ``model_dir`` into ``folder`` (``text.onnx``, ``vision.onnx``, optimized) and return
    their metadata.

    Args:
        tokenizer: The :class:`~st_plugins.core.runtime.tokenizer.TextTokenizer` the text graph is fed by.
        processor: The :class:`~st_plugins.core.runtime.images.ImageProcessor` the vision graph is fed by.
        tokenizer_outputs: The features the folder's tokenizer returns (its ``model_input_names``); the text
            graph takes those that ``get_text_features`` accepts.

    Raises:
        BackendError: A graph differs from torch beyond tolerance.
    """
    import torch

    from st_plugins.core.backends.build import probe_batches
    from st_plugins.core.runtime.session import optimize_offline

    model = load_image_text_model(model_dir, allow_pickle)
    probe = tokenizer.batch(tokenizer.encode(["a photo"]))
    names = text_inputs(model, tuple(k for k in probe if k in tokenizer_outputs))
    texts = probe_batches(tokenizer, names)
    text_error = _export_one(model, "get_text_features", texts, folder / "text.onnx", "text_embeds",
                             {n: {0: "batch", 1: "sequence"} for n in names})
    images = _probe_images(processor)
    vision_error = _export_one(model, "get_image_features", images, folder / "vision.onnx", "image_embeds",
                               {"pixel_values": {0: "batch"}})
    for name in ("text.onnx", "vision.onnx"):
        optimize_offline(folder / name)
    dimension = int(_reference(model, "get_image_features", images[1]).shape[-1])
    return {"text_inputs": list(names), "max_error": {"text": text_error, "vision": vision_error},
            "dimension": dimension, "opset": OPSET, "torch": torch.__version__,
            "model_type": getattr(model.config, "model_type", None), "optimized": "extended"}
