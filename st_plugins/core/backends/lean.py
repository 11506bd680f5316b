"""A torch-free bi-encoder: a cached ONNX graph run by onnxruntime, ``tokenizers`` and numpy.

Once a model has been exported (the first :class:`LeanEncoder` for it exports in a child process,
which imports torch once; later processes find the graph in the disk cache), a process that uses
only this module never imports torch or transformers: it starts fast and stays small.

Run ``python -m st_plugins.core.backends.lean export MODEL [onnx|int8]`` to export ahead of time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from st_plugins.core.backends import check_backend, store
from st_plugins.core.backends.numpy_heads import NumpyDense, normalize, pool
from st_plugins.core.backends.ort import OrtRunner
from st_plugins.core.resolve import resolve_model_path
from st_plugins.core.spec import DenseSpec, PoolingSpec, read_spec
from st_plugins.core.validation import as_text_list, check_positive_int
from st_plugins.errors import InputValueError, ModelFormatError, require

__all__ = ["LeanEncoder", "export_model"]


def export_model(root: str | os.PathLike, backend: str = "onnx") -> Path:
    """Export ``root`` for ``backend`` in a child process (torch is imported there, not here).

    Returns:
        The artifact folder.

    Raises:
        ModelFormatError: The export failed (the child's last error line is included).
    """
    backend = check_backend(backend, ("onnx", "int8"))
    cmd = [sys.executable, "-m", "st_plugins.core.backends.lean", "export", str(root), backend]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise ModelFormatError(f"Exporting {root} for backend={backend!r} failed: {last}")
    return Path(done.stdout.strip().splitlines()[-1])


def _tokenizer(folder: Path, max_length: int, lowercase: bool) -> Any:
    tokenizers = require("tokenizers", "onnx")
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ModelFormatError(f"{folder} has no tokenizer.json; the lean runtime needs a fast tokenizer file.")
    tok = tokenizers.Tokenizer.from_file(str(path))
    tok.no_padding()  # the file may pad every input to a fixed length: pad per batch instead
    tok.enable_truncation(max_length=max_length)
    if lowercase and "Lowercase" not in repr(tok.normalizer) and "lowercase=True" not in repr(tok.normalizer):
        from tokenizers.normalizers import Lowercase, Sequence

        tok.normalizer = Sequence([Lowercase()] + ([tok.normalizer] if tok.normalizer is not None else []))
    return tok


class LeanEncoder:
    """Embed texts with onnxruntime + tokenizers + numpy (no torch); vectors equal ``SentenceTransformer``'s.

    Args:
        model_name_or_path: A folder or registered name (default ``"all-MiniLM-L6-v2"``).
        backend: ``"onnx"`` (exact fp32) or ``"int8"``.
        num_threads: ONNX Runtime intra-op threads (default: ``$OMP_NUM_THREADS``, else every core).
        export: Export in a child process when the graph is not cached yet (else raise).

    Raises:
        ModelFormatError: The folder lacks ``tokenizer.json`` or uses a head the lean runtime lacks, or
            the graph is not cached and ``export`` is False.

    Example:
        >>> encoder = LeanEncoder("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> encoder.encode(["The weather is lovely today."]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model_name_or_path: str | os.PathLike = "all-MiniLM-L6-v2", backend: str = "onnx",
                 num_threads: int | None = None, export: bool = True) -> None:
        self.backend = check_backend(backend, ("onnx", "int8"))
        root = resolve_model_path(model_name_or_path)
        self.spec = read_spec(root)
        artifact = store.artifact_dir(store.content_hash(root), f"bi-{self.backend}")
        if not store.is_complete(artifact):
            if not export:
                raise ModelFormatError(
                    f"{root} has no cached {self.backend!r} graph; run "
                    f"`python -m st_plugins.core.backends.lean export {root} {self.backend}` or pass export=True."
                )
            artifact = export_model(root, self.backend)
        self.artifact = artifact
        self._runner = OrtRunner(artifact / "model.onnx", num_threads)
        self.max_seq_length = self._max_length()
        self._tok = _tokenizer(self.spec.transformer_path, self.max_seq_length, self.spec.do_lower_case)
        self._pad_id = self._tok.token_to_id(self._tok_config().get("pad_token") or "[PAD]") or 0
        self._left = self._tok_config().get("padding_side") == "left"
        self._heads = [NumpyDense(s.path, s.activation) if isinstance(s, DenseSpec) else normalize
                       for s in self.spec.steps if not isinstance(s, PoolingSpec)]
        self.prompts = {"query": "", "document": "", **self.spec.prompts}
        self._dim = self._dimension()

    def _tok_config(self) -> dict[str, Any]:
        path = self.spec.transformer_path / "tokenizer_config.json"
        if not hasattr(self, "_tok_cfg"):
            self._tok_cfg = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return self._tok_cfg

    def _max_length(self) -> int:
        if self.spec.max_seq_length is not None:
            return int(self.spec.max_seq_length)
        config = json.loads((self.spec.transformer_path / "config.json").read_text(encoding="utf-8"))
        limit = config.get("max_position_embeddings") or 512
        return int(min(self._tok_config().get("model_max_length", limit), limit))

    def _batch(self, encodings: list[Any]) -> dict[str, np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            cols = slice(width - n, width) if self._left else slice(0, n)
            ids[row, cols], types[row, cols], mask[row, cols] = e.ids, e.type_ids, 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    def _prompt_length(self, prompt: str) -> int:
        ids = self._tok.encode(prompt).ids
        special = {i for i, token in self._tok.get_added_tokens_decoder().items() if token.special}
        return len(ids) - (1 if ids and ids[-1] in special else 0)

    def encode(self, sentences: str | list[str], prompt_name: str | None = None, prompt: str | None = None,
               batch_size: int = 32, normalize_embeddings: bool = False) -> np.ndarray:
        """Embed one text (1-D result) or a list (2-D float32), in input order (batches by token length).

        Raises:
            InputTypeError: Non-str input (names the index).
            InputValueError: Unknown ``prompt_name`` or a non-positive ``batch_size``.
        """
        texts, single = as_text_list(sentences)
        check_positive_int(batch_size, "batch_size")
        if prompt is None and prompt_name is not None:
            if prompt_name not in self.prompts:
                raise InputValueError(f"`prompt_name` {prompt_name!r} is not one of {sorted(self.prompts)}.")
            prompt = self.prompts[prompt_name]
        if prompt:
            texts = [prompt + t for t in texts]
        pooling = self.spec.pooling
        prompt_length = self._prompt_length(prompt) if prompt and not pooling.include_prompt else None
        encodings = self._tok.encode_batch(texts) if texts else []
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        batches = ((order[s : s + batch_size], self._batch([encodings[i] for i in order[s : s + batch_size]]))
                   for s in range(0, len(order), batch_size))
        for idx, feeds, tokens in self._runner.stream(batches):  # the core's slicing: int8 scales match it
            x = pool(tokens, feeds["attention_mask"], pooling.modes, prompt_length)
            for head in self._heads:
                x = head(x)
            out[idx] = x
        if normalize_embeddings:
            out = normalize(out)
        return out[0] if single else out

    def _dimension(self) -> int:
        dense = [h for h in self._heads if isinstance(h, NumpyDense)]
        if dense:
            return dense[-1].weight.shape[1]
        config = json.loads((self.spec.transformer_path / "config.json").read_text(encoding="utf-8"))
        return int(config["hidden_size"]) * len(self.spec.pooling.modes)

    def get_embedding_dimension(self) -> int:
        """Dimension of the vectors :meth:`encode` returns."""
        return self._dim


def _main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "export":
        print("usage: python -m st_plugins.core.backends.lean export MODEL [onnx|int8]", file=sys.stderr)
        return 2
    from st_plugins.core.bi_encoder import SentenceTransformer

    model = SentenceTransformer(argv[1], device="cpu", backend=argv[2] if len(argv) > 2 else "onnx")
    model.encode(["warm up"])
    print(model._fast.artifact)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
