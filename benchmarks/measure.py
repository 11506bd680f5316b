"""Measuring helpers shared by the benchmark parts: interleaved rounds, median/min/max, fresh processes.

A fresh process runs ``python -c CODE`` where ``CODE`` sets ``rc``; a report appended to it prints, as
the last stdout line, ``rc``, the child's own peak RSS (``VmHWM``: rusage would count the parent's pages
after vfork/exec) and which heavy modules (torch, transformers) it imported. Wall time is the parent's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "HEAVY", "interleaved", "timed", "spread", "child_env", "run_child", "cli_code", "summarize_runs"]

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers")

_REPORT = (
    "\nimport json as _json, sys as _sys\n"
    "_hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "print('\\n' + _json.dumps({'rc': rc, 'rss_mib': _hwm / 1024, "
    f"'heavy': [m for m in {HEAVY!r} if m in _sys.modules]}}))\n"
)


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[Any]]:
    """Call each function once per round, the order rotating each round; each one's results in order."""
    names, out = list(fns), {name: [] for name in fns}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(fns[name]())
    return out


def timed(fn: Callable[[], Any]) -> Callable[[], float]:
    """``fn`` as a function returning its wall seconds."""
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    return run


def spread(values: Iterable[float]) -> dict[str, float]:
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def child_env(**extra: str) -> dict[str, str]:
    """This environment, offline, with the checkout first on ``PYTHONPATH``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_child(code: str, env: dict[str, str] | None = None, timeout: float = 1800) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (cwd: the checkout): ``wall_s``, ``rss_mib``, ``heavy``, ``stdout``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code + _REPORT], capture_output=True, text=True,
                          env=env or child_env(), cwd=ROOT, timeout=timeout)
    wall = time.perf_counter() - start
    lines = done.stdout.rstrip().splitlines()
    report = json.loads(lines[-1]) if done.returncode == 0 and lines else {"rc": done.returncode}
    if report["rc"] != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
        raise RuntimeError(f"fresh-process case failed (exit {report['rc']}): {code.strip().splitlines()[-1]}: {tail}")
    return {"wall_s": wall, **report, "stdout": "\n".join(lines[:-1])}


def cli_code(args: list[str]) -> str:
    """What the ``st-plugins`` console script runs, with ``args``."""
    return f"import sys\nfrom st_plugins.cli import main\nrc = main({args!r})\n"


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Wall seconds and peak RSS (MiB) over fresh-process runs, and the heavy modules any of them imported."""
    return {"wall_s": {**spread(r["wall_s"] for r in runs), "runs": [r["wall_s"] for r in runs]},
            "peak_rss_mib": spread(r["rss_mib"] for r in runs),
            "heavy_modules": sorted({m for r in runs for m in r["heavy"]})}
