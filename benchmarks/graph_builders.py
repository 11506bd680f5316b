"""The safetensors-built graph against the torch-exported one, same model, same feeds, same run (interleaved).

Run: python benchmarks/graph_builders.py [--rounds 5]   (needs the torch extra for the export)
Prints sentences (or passages) per second of each graph on short texts (batch 32) and ~256-token
passages (batch 16), the ratio built/exported, and the max difference between their outputs.
"""

from __future__ import annotations

import argparse
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
    from st_plugins.core.runtime.session import make_session
    from st_plugins.core.runtime.tokenizer import TextTokenizer

    root = resolve_model_path("all-MiniLM-L6-v2")
    tmp = Path(tempfile.mkdtemp(prefix="builders-"))
    paths = {"built (safetensors)": _graph(tmp / "a", "safetensors", root), "exported (torch)": _graph(tmp / "b", "export", root)}
    sessions = {k: make_session(p, optimized=True) for k, p in paths.items()}
    tok = TextTokenizer.from_folder(root, max_length=256)
    short = list(CALIBRATION_SENTENCES)[:32]
    passage = " ".join(CALIBRATION_SENTENCES)
    workloads = {"short texts, batch 32": (tok.batch(tok.encode(short)), 32),
                 "passages of 256 tokens, batch 16": (tok.batch(tok.encode([passage] * 16)), 16)}
    names = [i.name for i in next(iter(sessions.values())).get_inputs()]
    for label, (feeds, n) in workloads.items():
        feeds = {k: feeds[k] for k in names}
        outs = {k: s.run(None, feeds)[0] for k, s in sessions.items()}
        a, b = outs.values()
        best = {k: [] for k in sessions}
        for _ in range(args.rounds):
            for k, s in sessions.items():
                start, reps = time.perf_counter(), 0
                while time.perf_counter() - start < 1.0:
                    s.run(None, feeds)
                    reps += 1
                best[k].append(reps * n / (time.perf_counter() - start))
        rates = {k: float(np.median(v)) for k, v in best.items()}
        built, exported = rates.values()
        print(f"{label}: built {built:.1f}/s, exported {exported:.1f}/s, ratio {built / exported:.2f}x, "
              f"max |diff| {np.abs(a - b).max():.1e}")


if __name__ == "__main__":
    main()
