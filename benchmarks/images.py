"""st_plugins vs sentence-transformers on an image-text model: the digits model of ``st-plugins train-clip-digits``
(a CLIP vision tower + all-MiniLM-L6-v2 text tower), on the 597 held-out digits and the ten captions.

    python benchmarks/images.py                 # $ST_PLUGINS_HOME/clip-digits (train it first)
    python benchmarks/images.py --model PATH --rounds 7 --runs 3

Parts, all in this run: fresh processes (load the model, embed one image and one caption: wall, peak RSS,
whether torch was imported; after one untimed warm-up each, cases interleaved), and in-process throughput
(images, batch 64; captions, batch 64; rounds interleaved, the order rotating). Ratios are ours over
sentence-transformers' (throughput: higher is better; time and memory: lower is better). Accuracy: max |diff|
of the vectors vs sentence-transformers and the zero-shot accuracy each gives.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import report  # noqa: E402
from machine import machine  # noqa: E402
from measure import interleaved, run_child, spread, summarize_runs, timed  # noqa: E402

_START = """
from PIL import Image
import numpy as np
from {module} import SentenceTransformer
model = SentenceTransformer({path!r}, device="cpu")
image = Image.fromarray(np.full((8, 8, 3), 200, dtype=np.uint8))
model.encode([image]); model.encode(["a handwritten digit seven"])
rc = 0
"""
CASES = {"sentence-transformers": "sentence_transformers", "st_plugins": "st_plugins"}


def _fresh(path: Path, runs: int) -> dict[str, dict]:
    codes = {name: _START.format(module=module, path=str(path)) for name, module in CASES.items()}
    for code in codes.values():  # warm-up: page cache, and our graphs built once
        run_child(code)
    out = interleaved({name: (lambda c=code: run_child(c)) for name, code in codes.items()}, runs)
    return {name: summarize_runs(r) for name, r in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer as Peer

    from st_plugins import SentenceTransformer
    from st_plugins.training.clip_digits import captions, clip_digits_dir, digits_split, evaluate

    path = args.model or clip_digits_dir()
    if not (path / "modules.json").is_file():
        raise SystemExit(f"no image-text model at {path}: run `st-plugins train-clip-digits` first (or --model).")
    m = machine()
    print(f"## Images: st_plugins {m['versions']['st_plugins']} vs sentence-transformers "
          f"{m['versions']['sentence-transformers']} ({path.name})\n")
    print(f"- CPU: {m['cpu']}; {m['cores']} logical cores; runtime threads {m['runtime_threads']}; "
          f"load average at start {' / '.join(f'{x:.2f}' for x in m['loadavg_start'])}")
    images, labels = digits_split()["test"]
    texts = captions() * 60
    ours, peer = SentenceTransformer(str(path), device="cpu"), Peer(str(path), device="cpu")
    assert ours.graph is not None, "st_plugins should run its cached graphs"

    fresh = _fresh(path, args.runs)
    rows = []
    for name, s in fresh.items():
        base = fresh["sentence-transformers"]
        rows.append([name, report._wall(s["wall_s"]), f"{s['peak_rss_mib']['median']:.0f}",
                     f"{s['wall_s']['median'] / base['wall_s']['median']:.2f}x",
                     f"{s['peak_rss_mib']['median'] / base['peak_rss_mib']['median']:.2f}x",
                     report._heavy(s["heavy_modules"])])
    print(report.table(["fresh process: load, embed 1 image + 1 caption", "wall s, median (min-max)",
                        "peak RSS MiB", "time vs st", "memory vs st", "imports torch/transformers"], rows))

    work = {"597 digit images, batch 64": (images, 64), "600 captions, batch 64": (texts, 64)}
    rows = []
    for label, (items, batch) in work.items():
        fns = {"sentence-transformers": timed(lambda: peer.encode(items, batch_size=batch)),
               "st_plugins": timed(lambda: ours.encode(items, batch_size=batch))}
        rates = {k: spread(len(items) / t for t in v) for k, v in interleaved(fns, args.rounds).items()}
        diff = float(np.abs(ours.encode(items[:200]) - peer.encode(items[:200])).max())
        ratio = rates["st_plugins"]["median"] / rates["sentence-transformers"]["median"]
        rows.append([label, f"{rates['sentence-transformers']['median']:.0f}", f"{rates['st_plugins']['median']:.0f}",
                     f"{ratio:.2f}x", f"{diff:.1e}"])
    print(report.table(["in process", "st items/s", "ours items/s", "ours vs st", "max abs diff"], rows))
    acc = {name: evaluate(model, images, labels) for name, model in (("sentence-transformers", peer), ("st_plugins", ours))}
    print("\nZero-shot accuracy on the 597 test digits: " +
          ", ".join(f"{k} {v['accuracy']:.4f} (recall@10 {v['recall@10']:.4f})" for k, v in acc.items()))
    print(f"\n(run {time.strftime('%Y-%m-%d %H:%M')}, {args.rounds} rounds, {args.runs} fresh runs per case)")


if __name__ == "__main__":
    main()
