"""torch -> ONNX: export a transformers model with dynamic batch and sequence axes, then verify it.

The graph takes the tokenizer's features (``input_ids``, ``attention_mask`` and ``token_type_ids`` when
the tokenizer makes them) padded per batch, and returns ``token_embeddings`` (bi-encoders) or
``logits`` (cross-encoders). Nothing is padded to a fixed length. Every artifact is checked against
the torch model on probe batches before it is published.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.errors import BackendError

__all__ = ["export_plain", "describe", "torch_reference", "compare", "EXACT_TOLERANCE"]

OPSET = 17
EXACT_TOLERANCE = 1e-4  # max |onnx - torch| on token embeddings / logits, relative to max(1, |torch|)


class _Wrapper:
    """Positional-argument module around a transformers model, returning one tensor."""

    @staticmethod
    def build(model: Any, names: tuple[str, ...], output: str):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args):
                out = self.model(**dict(zip(names, args)), return_dict=True)
                return out.last_hidden_state if output == "token_embeddings" else out.logits

        return Wrapped().eval()


def torch_reference(model: Any, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
    """The torch model's float32 output for numpy ``feeds`` (the artifact's reference)."""
    import torch

    with torch.inference_mode():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}, return_dict=True)
        tensor = out.last_hidden_state if output == "token_embeddings" else out.logits
    return tensor.float().numpy()


def compare(got: np.ndarray, ref: np.ndarray, mask: np.ndarray | None) -> float:
    """Max absolute difference (masked positions only for token outputs), relative to ``max(1, |ref|)``."""
    diff = np.abs(got - ref)
    if mask is not None and diff.ndim == 3:
        diff = diff * mask[..., None]
    return float(diff.max() / max(1.0, float(np.abs(ref).max())))


def _export(model: Any, probe: dict[str, np.ndarray], output: str, path: Path) -> None:
    import torch

    names = tuple(probe)
    work = copy.deepcopy(model).float().eval()
    if hasattr(work, "set_attn_implementation"):
        try:
            work.set_attn_implementation("eager")  # plain MatMul/Softmax ops, no SDPA mask tracing
        except (ValueError, AttributeError):
            pass
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic[output] = {0: "batch", 1: "sequence"} if output == "token_embeddings" else {0: "batch"}
    args = tuple(torch.from_numpy(probe[n]) for n in names)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Wrapper.build(work, names, output), args, str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(names), output_names=[output], dynamic_axes=dynamic,
                          do_constant_folding=True, external_data=False)


def _max_error(path: Path, model: Any, probes: list[dict[str, np.ndarray]], output: str) -> float:
    from st_plugins.core.runtime.session import make_session

    session = make_session(path, threads=1)
    names = [i.name for i in session.get_inputs()]
    worst = 0.0
    for feeds in probes:
        got = session.run(None, {k: feeds[k] for k in names})[0]
        worst = max(worst, compare(got, torch_reference(model, feeds, output), feeds.get("attention_mask")))
    return worst


def export_plain(model: Any, probes: list[dict[str, np.ndarray]], path: Path, output: str) -> float:
    """Export the plain fp32 graph to ``path`` and return its max error against torch on ``probes``.

    ONNX Runtime's transformer fusions (fused Attention, EmbedLayerNormalization) were measured slower
    than the plain graph on short batches here, and equal on long ones, so the plain graph is used.

    Args:
        model: A transformers model in float32 (``AutoModel`` or ``AutoModelForSequenceClassification``).
        probes: Padded numpy feature batches; the first is traced, all are used to verify.
        path: Output ``.onnx`` file.
        output: ``"token_embeddings"`` or ``"logits"``.

    Raises:
        BackendError: The exported graph does not match the torch model within :data:`EXACT_TOLERANCE`.
    """
    _export(model, probes[0], output, path)
    error = _max_error(path, model, probes, output)
    if error > EXACT_TOLERANCE:
        path.unlink(missing_ok=True)
        raise BackendError(f"The ONNX export differs from torch by {error:.2e} (> {EXACT_TOLERANCE}); not used.")
    return error


def describe(model: Any, probes: list[dict[str, np.ndarray]], output: str) -> dict[str, Any]:
    """Metadata common to every artifact."""
    import torch

    return {"inputs": list(probes[0]), "output": output, "opset": OPSET, "torch": torch.__version__,
            "model_type": getattr(model.config, "model_type", None)}
