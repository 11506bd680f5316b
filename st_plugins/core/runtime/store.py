"""On-disk cache of exported artifacts, keyed by the model's content hash and the library version.

Layout under :func:`backends_dir` (``$ST_PLUGINS_HOME/backends`` or ``~/.cache/st_plugins/backends``)::

    index/<folder id>.json            file stats -> content hash memo (no re-hashing while nothing changed)
    <content hash[:24]>/<variant>-<library key>/   model.onnx + meta.json (one artifact)

``meta.json`` lists every file of an artifact with its size and SHA-256. A file whose size, inode or
change time differs from the last check (``.verified.json``) is hashed again before it is used; a
mismatch makes the artifact incomplete, so it is rebuilt rather than served.

A changed model folder hashes differently, so it gets a new directory and the old one is removed;
a new st_plugins or onnxruntime version changes the library key, so artifacts are rebuilt.
Everything here is torch-free (the lean runtime uses it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["FORMAT", "home_dir", "backends_dir", "content_hash", "library_key", "artifact_dir", "publish", "is_complete",
           "read_meta"]

FORMAT = 5  # bump when the artifact recipe or layout changes (3: tokenizer.json + facts; 4: optimized offline;
#            5: SHA-256 of every file)
_SKIP_DIRS = {".git", "onnx", "openvino", "__pycache__"}
_SKIP_FILES = {"README.md", ".gitattributes"}


def home_dir() -> Path:
    """Where st_plugins keeps what it makes: ``$ST_PLUGINS_HOME``, else ``st_plugins`` in the user cache dir
    (``$XDG_CACHE_HOME``, ``~/.cache``, or ``%LOCALAPPDATA%`` on Windows)."""
    env = os.environ.get("ST_PLUGINS_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "st_plugins"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "st_plugins"


def backends_dir() -> Path:
    """``backends`` under :func:`home_dir`: the graph cache.

    Example:
        >>> backends_dir().name
        'backends'
    """
    return home_dir() / "backends"


def _model_files(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name not in _SKIP_FILES and not name.startswith("."):
                path = Path(root) / name
                found.append((path.relative_to(folder).as_posix(), path))
    return found


def _hash_files(files: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for rel, path in files:
        digest.update(rel.encode() + b"\0")
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def content_hash(folder: str | os.PathLike) -> str:
    """SHA-256 over the folder's model files; memoized by (size, mtime) so unchanged folders are not re-read.

    When the folder changed since the memo was written, the artifacts of its previous hash are removed.
    """
    folder = Path(folder).resolve()
    files = _model_files(folder)
    stats = [[rel, st.st_size, st.st_mtime_ns] for rel, path in files for st in [path.stat()]]
    memo = backends_dir() / "index" / (hashlib.sha1(str(folder).encode()).hexdigest() + ".json")
    old = _read_json(memo)
    if old.get("stats") == stats and old.get("hash"):
        return old["hash"]
    digest = _hash_files(files)
    if old.get("hash") and old["hash"] != digest:
        shutil.rmtree(backends_dir() / old["hash"][:24], ignore_errors=True)
    _write_json(memo, {"folder": str(folder), "stats": stats, "hash": digest})
    return digest


def library_key(variant: str) -> str:
    """Variant + st_plugins version + onnxruntime version + export format.

    Example:
        >>> library_key("onnx").startswith("onnx-st")
        True
    """
    from st_plugins import __version__

    try:
        from importlib.metadata import version

        ort = version("onnxruntime")
    except ImportError:  # PackageNotFoundError: not installed; the key still works, the session will say why
        ort = "none"
    return f"{variant}-st{__version__}-ort{ort}-f{FORMAT}"


def artifact_dir(model_hash: str, variant: str) -> Path:
    """Where the artifact for ``(model_hash, variant)`` lives (it may not exist yet)."""
    return backends_dir() / model_hash[:24] / library_key(variant)


def publish(target: Path, build: Callable[[Path], dict]) -> Path:
    """Build an artifact into a temporary directory, then move it to ``target`` atomically.

    ``build(tmp)`` writes files into ``tmp`` and returns metadata stored as ``meta.json``. Two processes
    building at once both succeed; the first rename wins. Stale siblings (other library keys of the same
    variant) are removed.
    """
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        meta = build(tmp)
        files = sorted(p for p in tmp.iterdir() if p.is_file())
        meta["files"] = {p.name: p.stat().st_size for p in files}
        meta["sha256"] = {p.name: _sha256(p) for p in files}
        _write_json(tmp / "meta.json", meta)
        _write_json(tmp / _VERIFIED, _stats(tmp, meta["files"]))
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:  # another process published first
            if not is_complete(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    variant = target.name.split("-st", 1)[0]
    for sibling in target.parent.glob(f"{variant}-st*"):
        if sibling != target:
            shutil.rmtree(sibling, ignore_errors=True)
    return target


def is_complete(target: Path) -> bool:
    """True when ``target`` holds ``meta.json`` and every file it lists, with the recorded sizes and hashes.

    Hashing is skipped while a file's size, inode and change times are those seen at the last check (so a
    start-up does not read the graph twice); any write to a file changes them and triggers a full check.
    """
    meta = _read_json(target / "meta.json")
    files, hashes = meta.get("files"), meta.get("sha256")
    if not files or not isinstance(hashes, dict) or set(hashes) != set(files):
        return False
    try:
        if any((target / name).stat().st_size != size for name, size in files.items()):
            return False
        stats = _stats(target, files)
    except OSError:  # a listed file is missing
        return False
    if _read_json(target / _VERIFIED) == stats:
        return True
    if any(_sha256(target / name) != digest for name, digest in hashes.items()):
        return False
    try:
        _write_json(target / _VERIFIED, stats)
    except OSError:  # a read-only cache still works; it is only hashed at every start
        pass
    return True


_VERIFIED = ".verified.json"


def _stats(folder: Path, files: dict) -> dict:
    """Size, inode and change times of each file: any write (even one that restores the modification time
    with ``os.utime``) moves ``st_ctime_ns``, and a copy changes the inode."""
    stats = {}
    for name in sorted(files):
        st = (folder / name).stat()
        stats[name] = [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    return stats


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_meta(target: Path) -> dict:
    return _read_json(target / "meta.json")


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)
