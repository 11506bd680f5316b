"""The benchmark's results as Markdown tables, ready to paste into the README."""

from __future__ import annotations

from typing import Any

from machine import FLAGS

__all__ = ["table", "header", "gemm_table", "fresh_table", "build_table", "latency_table", "throughput_table",
           "load_line"]

PEER = "st torch"


def table(columns: list[str], rows: list[list[str]], notes: list[str] = ()) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(["", *lines, *([""] + list(notes) if notes else [])])


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def _loads(load: Any) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def header(m: dict[str, Any], settings: str) -> str:
    v = m["versions"]
    have = set(m["flags"])
    flags = ", ".join(f if f in have else f"no {f}" for f in FLAGS)
    return "\n".join([
        f"## Benchmark: st_plugins {v['st_plugins']} vs sentence-transformers {v['sentence-transformers']} "
        "(all-MiniLM-L6-v2)", "",
        f"- CPU: {m['cpu']}; {m['cores']} logical cores ({m['usable_cores']} usable, "
        f"{m['physical_cores_per_socket']} physical per socket); runtime threads {m['runtime_threads']}",
        f"- flags: {flags}",
        f"- load average (1/5/15 min) at start: {_loads(m['loadavg_start'])}",
        "- python {python}; ".format(**m) + ", ".join(f"{k} {val}" for k, val in v.items() if k != "st_plugins"),
        f"- {settings}",
    ])


def gemm_table(g: dict[str, Any]) -> str:
    base = g["gflops"]["torch fp32"]
    shapes = " and ".join(f"{m}x{k} @ {k}x{n}" for m, k, n in g["shapes"])
    rows = [[name, _num(rate), f"{rate / base:.2f}x"] for name, rate in g["gflops"].items()]
    return table([f"GEMM limit ({shapes}, {g['torch_threads']} threads)", "GFLOP/s (int8: GOP/s)", "vs torch fp32"], rows)


def _wall(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


def _heavy(mods: list[str]) -> str:
    return ", ".join(mods) if mods else "no"


def fresh_table(title: str, cases: dict[str, dict], runs: int, baseline: str | None = None,
                relative: str = "time vs sentence-transformers", notes: list[str] = ()) -> str:
    """Fresh-process runs: median (min-max) wall seconds, ``baseline``-relative column, peak RSS, heavy modules.

    ``relative`` names the column: the case's median over the baseline's (a ratio), or, when it starts
    with ``over``, the case's median minus the baseline's (seconds).
    """
    base = cases[baseline]["wall_s"]["median"] if baseline in cases else None
    rows = []
    for name, s in cases.items():
        med = s["wall_s"]["median"]
        rel = ("—" if base is None else f"{med - base:+.2f} s" if relative.startswith("over") else f"{med / base:.2f}x")
        rows.append([name, _wall(s["wall_s"]), rel, f"{s['peak_rss_mib']['median']:.0f}", _heavy(s["heavy_modules"])])
    return table([f"{title} (median of {runs} fresh processes, interleaved)", "wall s, median (min-max)", relative,
                  "peak RSS MiB", "torch/transformers imported"], rows, notes)


def build_table(b: dict[str, Any]) -> str:
    rows = [[name, f"{s['wall_s']:.1f}", f"{s['peak_rss_mib']:.0f}", "yes" if s.get("heavy_modules") else "no"]
            for name, s in b["cases"].items()]
    return table(["one-time graph build (fresh empty $ST_PLUGINS_HOME, fresh process)", "wall s", "peak RSS MiB",
                  "torch imported"], rows, b["notes"])


def latency_table(lat: dict[str, Any]) -> str:
    stats, base = lat["paths"], lat["paths"][PEER]["median"]
    rows = [[name, f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})", f"{s['median'] / base:.2f}x"]
            for name, s in stats.items()]
    return table([f"warm single-query latency, `encode({lat['sentence']!r})` (median of {lat['rounds']} rounds x "
                  f"{lat['calls']} calls)", "ms per call, median (min-max)",
                  "ours / sentence-transformers (lower is better; target <= 0.55x)"], rows)


def _throughput_cell(s: dict[str, Any] | None, base: float | None) -> str:
    if not s:
        return "—"
    return f"{_num(s['median'])} ({s['median'] / base:.2f}x)" if base else _num(s["median"])


def _accuracy_cell(name: str, bi_parts: list[dict], cross: dict | None) -> str:
    if name == PEER:
        return "reference"
    cos = [p[name]["min_cos"] for p in bi_parts if name in p]
    diff = cross[name]["max_abs_score_diff"] if cross and name in cross else None
    return " / ".join([f"{min(cos):.6f}" if cos else "—", f"{diff:.1e}" if diff is not None else "—"])


def throughput_table(t: dict[str, Any], rounds: int) -> str:
    """One row per measured workload, one column per path: ``items/s (ratio to sentence-transformers torch)``."""
    parts = list(t["parts"].items())
    paths = list(dict.fromkeys(name for _, v in parts for name in v["stats"]))
    if "sts_spearman" in t:
        paths += [p for p in t["sts_spearman"] if p not in paths]
    rows = []
    for _, part in parts:
        base = part["stats"].get(PEER, {}).get("median")
        rows.append([part["title"]] + [_throughput_cell(part["stats"].get(p), base) for p in paths])
    bi = [part["stats"] for key, part in parts if key != "cross_rank"]
    cross = t["parts"].get("cross_rank", {}).get("stats")
    if bi or cross:
        rows.append(["min cosine to fp32 (bi) / max score diff (cross)"] + [_accuracy_cell(p, bi, cross) for p in paths])
    if "sts_spearman" in t:
        rows.append(["STS test Spearman"] + [f"{t['sts_spearman'][p]:.5f}" if p in t["sts_spearman"] else "—"
                                              for p in paths])
    return table([f"workload (median of {rounds} round{'s' * (rounds != 1)})", *paths], rows, t.get("notes", []))


def load_line(m: dict[str, Any]) -> str:
    return f"\nload average (1/5/15 min) at start: {_loads(m['loadavg_start'])}; at end: {_loads(m['loadavg_end'])}"
