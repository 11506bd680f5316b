"""The safetensors-built graph against the torch-exported one, same model, same feeds, same run (interleaved).

Run: python benchmarks/graph_builders.py [--rounds 5]   (needs the torch extra for the export)
Prints sentences (or passages) per second of each graph on short texts (batch 32) and ~256-token
passages (batch 16), the ratio built/exported, and the max difference between their outputs. Each graph is
loaded as the runtime loads it (the export is optimized when it is built; the built graph is fused by ONNX
Runtime at session start) and run as the runtime runs it (each batch cut into one slice per core, one thread
each: :class:`~st_plugins.core.runtime.session.OrtRunner`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _graph(home: Path, builder: str, root: Path) -> Path:
    from st_plugins.core.backends.build import build_for_folder

    os.environ["ST_PLUGINS_HOME"] = str(home)
    return build_for_folder(root, "bi", "onnx", builder=builder) / "model.onnx"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from st_plugins.core.calibration import CALIBRATION_SENTENCES
    from st_plugins.core.resolve import resolve_model_path
    from st_plugins.core.runtime.session import OrtRunner
    from st_plugins.core.runtime.tokenizer import TextTokenizer

    root = resolve_model_path("all-MiniLM-L6-v2")
    tmp = Path(tempfile.mkdtemp(prefix="builders-"))
    paths = {"built (safetensors)": _graph(tmp / "a", "safetensors", root), "exported (torch)": _graph(tmp / "b", "export", root)}
    runners = {k: OrtRunner(p, optimized=bool(json.loads((p.parent / "meta.json").read_text()).get("optimized")))
               for k, p in paths.items()}
    tok = TextTokenizer.from_folder(root, max_length=256)
    short = list(CALIBRATION_SENTENCES)[:32]
    passage = " ".join(CALIBRATION_SENTENCES)
    workloads = {"short texts, batch 32": (tok.batch(tok.encode(short)), 32),
                 "passages of 256 tokens, batch 16": (tok.batch(tok.encode([passage] * 16)), 16)}
    for label, (feeds, n) in workloads.items():
        batch = [(np.arange(n), feeds)]
        outs = {k: [out for _, _, out in r.stream(batch)] for k, r in runners.items()}
        diff = max(float(np.abs(x - y).max()) for x, y in zip(*outs.values()))
        best = {k: [] for k in runners}
        for _ in range(args.rounds):
            for k, r in runners.items():
                start, reps = time.perf_counter(), 0
                while time.perf_counter() - start < 1.0:
                    for _ in r.stream(batch):
                        pass
                    reps += 1
                best[k].append(reps * n / (time.perf_counter() - start))
        rates = {k: float(np.median(v)) for k, v in best.items()}
        built, exported = rates.values()
        print(f"{label}: built {built:.1f}/s, exported {exported:.1f}/s, ratio {built / exported:.2f}x, "
              f"max |diff| {diff:.1e}")


if __name__ == "__main__":
    main()
