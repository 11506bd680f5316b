"""Bulk indexing into a Chroma collection: content-hash ids, batches, a progress bar, idempotent.

:func:`index_documents` adds texts in batches and skips ids already present, so a run that was
interrupted (even killed) and re-run ends with every text present exactly once. :func:`split_passages`
and :func:`read_passages` turn ``.txt``/``.md`` files into passages for the ``st-plugins index`` command;
:func:`iter_image_files` and :func:`index_images` do the same for image files, added by ``uris`` to a collection
whose model has an image tower. Chroma itself is only touched through the collection object you pass in.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from st_plugins.core.validation import as_text_list, check_positive_int, check_text
from st_plugins.errors import InputTypeError, InputValueError, StoreUnavailableError

__all__ = ["IndexResult", "Passage", "content_id", "index_documents", "index_images", "iter_image_files",
           "iter_text_files", "read_passages", "split_passages"]

TEXT_SUFFIXES = (".txt", ".md")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class IndexResult:
    """What :func:`index_documents` did: ids in input order, how many were added or already there, and
    how many documents the collection holds after the run."""

    ids: list[str] = field(default_factory=list)
    added: int = 0
    skipped: int = 0
    total: int | None = None


@dataclass(frozen=True)
class Passage:
    """One passage of a file: its text, the file it came from and its position there."""

    text: str
    source: str
    index: int


def content_id(text: str, namespace: str = "") -> str:
    """A stable id from the content (sha256 of ``namespace`` and ``text``): same text, same id.

    Example:
        >>> content_id("hello") == content_id("hello"), content_id("hello") == content_id("hello", "a.md")
        (True, False)
        >>> len(content_id("hello"))
        32
    """
    return hashlib.sha256(f"{namespace}\x00{text}".encode()).hexdigest()[:32]


def index_documents(
    collection: Any,
    texts: Sequence[str],
    ids: Sequence[str] | None = None,
    metadatas: Sequence[dict[str, Any]] | None = None,
    batch_size: int = 64,
    show_progress_bar: bool = True,
) -> IndexResult:
    """Embed and add ``texts`` to a Chroma ``collection`` in batches, skipping ids it already holds.

    The collection's own embedding function embeds the texts. Every argument is checked before
    anything is written. Re-running with the same texts adds nothing; a run killed midway and
    re-run adds exactly the missing texts.

    Args:
        collection: A Chroma collection with an embedding function (e.g. :class:`st_plugins.chroma.ChromaEmbeddingFunction`).
        texts: The documents (str each).
        ids: One id per text (default: :func:`content_id` of the text; duplicates are kept once).
        metadatas: One metadata dict per text, or ``None``.
        batch_size: Texts embedded and added per call (at most ``client.get_max_batch_size()``).
        show_progress_bar: Show a tqdm bar.

    Returns:
        An :class:`IndexResult` with the ids (input order), the counts added / already present, and the
        collection's size after the run.

    Raises:
        InputTypeError: ``texts`` is ``None`` or holds a non-str (names the index); bad ``ids``/``metadatas``.
        InputValueError: ``texts`` is empty; lengths differ; the same id given for two different texts.
        StoreUnavailableError: A Chroma server stopped answering (what was added stays; re-run to finish).
    """
    texts, ids, metadatas, order = check_documents(texts, ids, metadatas, batch_size)
    return _add(collection, "documents", texts, ids, metadatas, order, batch_size, show_progress_bar, "text")


def index_images(
    collection: Any,
    uris: Sequence[str],
    ids: Sequence[str] | None = None,
    metadatas: Sequence[dict[str, Any]] | None = None,
    batch_size: int = 64,
    show_progress_bar: bool = True,
) -> IndexResult:
    """:func:`index_documents` for image files: add them by ``uris``, which the collection's data loader reads.

    The collection must embed images (:class:`st_plugins.chroma.ChromaMultimodalEmbeddingFunction`) and have a data
    loader (:func:`st_plugins.chroma.open_collection` attaches :class:`st_plugins.chroma.ImageLoader`). Chroma
    stores each uri with its vector.

    Args:
        collection: A Chroma collection with an image-text embedding function and a data loader.
        uris: The image files (str paths each).
        ids: One id per image (default: :func:`content_id` of the uri).
        metadatas: One metadata dict per image, or ``None``.
        batch_size: Images read, embedded and added per call.
        show_progress_bar: Show a tqdm bar.

    Returns:
        An :class:`IndexResult`, as :func:`index_documents`.

    Raises:
        InputTypeError, InputValueError: As :func:`index_documents`, for ``uris``; a missing file or one that is not
            an image (from the core, through the data loader: nothing of that batch is written).
        StoreUnavailableError: A Chroma server stopped answering.
    """
    uris, _ = as_text_list(uris, "uris")
    if not uris:
        raise InputValueError("`uris` must be a non-empty list of image paths; got an empty list.")
    check_positive_int(batch_size, "batch_size")
    ids = _check_ids(ids, uris)
    metadatas = _check_metadatas(metadatas, len(uris))
    order = _first_occurrences(ids, uris)
    return _add(collection, "uris", uris, ids, metadatas, order, batch_size, show_progress_bar, "image")


def _add(collection: Any, field_name: str, values: list[str], ids: list[str], metadatas: Any, order: list[int],
         batch_size: int, show_progress_bar: bool, unit: str) -> IndexResult:
    """Add ``values`` as ``field_name`` (documents or uris) in batches, skipping ids already present."""
    result = IndexResult(ids=ids)
    from tqdm.auto import tqdm

    with tqdm(total=len(order), desc="Indexing", unit=unit, disable=not show_progress_bar) as bar, \
            _StoreErrors(result, len(order)):
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            present = set(collection.get(ids=[ids[i] for i in chunk], include=[])["ids"])
            todo = [i for i in chunk if ids[i] not in present]
            if todo:
                collection.add(ids=[ids[i] for i in todo], **{field_name: [values[i] for i in todo]},
                               metadatas=[metadatas[i] for i in todo] if metadatas else None)
            result.added += len(todo)
            result.skipped += len(chunk) - len(todo)
            bar.update(len(chunk))
            bar.set_postfix(added=result.added, present=result.skipped)
        result.total = collection.count()  # a server can die here too: the same StoreUnavailableError
    return result


class _StoreErrors:
    """Turn a Chroma server that stops answering into :class:`StoreUnavailableError` (what was done, what to do)."""

    def __init__(self, result: IndexResult, total: int) -> None:
        self.result, self.total = result, total

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if exc is None or not is_transport_error(exc):
            return False
        raise StoreUnavailableError(
            f"The Chroma server stopped answering after {self.result.added + self.result.skipped} of {self.total} texts "
            f"({type(exc).__name__}: {exc}). Nothing is lost: texts are stored under content ids, so start the server "
            "again and re-run the same call: it adds exactly what is missing.") from None


def is_transport_error(exc: BaseException) -> bool:
    """A Chroma server that did not answer (httpx transport, connection or timeout errors), not one of ours.

    Shared by :func:`index_documents` and ``st_plugins.ray.ChromaDatasink``.
    """
    import sys

    from st_plugins.errors import StPluginsError

    if isinstance(exc, StPluginsError):
        return False
    httpx = sys.modules.get("httpx")  # Chroma's HTTP client; imported only when a server is used
    return isinstance(exc, (ConnectionError, TimeoutError)) or (httpx is not None and isinstance(exc, httpx.TransportError))


def check_documents(texts: Any, ids: Any, metadatas: Any, batch_size: Any) -> tuple[list[str], list[str], Any, list[int]]:
    """The checks of :func:`index_documents` (shared with ``st_plugins.ray.index_documents``), before any write.

    Returns:
        ``(texts, ids, metadatas, order)``: ``ids`` filled with :func:`content_id` when ``None``, and
        ``order`` the positions to write (each id once).
    """
    texts, _ = as_text_list(texts, "texts")
    if not texts:
        raise InputValueError("`texts` must be a non-empty list of str; got an empty list. Pass at least one text.")
    check_positive_int(batch_size, "batch_size")
    ids = _check_ids(ids, texts)
    metadatas = _check_metadatas(metadatas, len(texts))
    return texts, ids, metadatas, _first_occurrences(ids, texts)


def _check_ids(ids: Sequence[str] | None, texts: list[str]) -> list[str]:
    if ids is None:
        return [content_id(t) for t in texts]
    ids = _as_list(ids, "ids", "one str id per text")
    if len(ids) != len(texts):
        raise InputValueError(f"`ids` must have one id per text ({len(texts)}); got {len(ids)}.")
    for i, value in enumerate(ids):
        if not isinstance(value, str) or not value:
            raise InputTypeError(f"`ids[{i}]` must be a non-empty str; got {value!r}.")
        check_text(value, f"ids[{i}]")
    return ids


def _as_list(values: Any, name: str, what: str) -> list[Any]:
    """``values`` as a list; a str, a dict, a set or a non-iterable is refused (naming ``name``)."""
    if isinstance(values, (str, bytes, dict, set, frozenset)) or not hasattr(values, "__iter__"):
        raise InputTypeError(f"`{name}` must be a list ({what}); got {type(values).__name__}.")
    return list(values)


_SCALARS = (str, int, float)  # bool is an int; Chroma also keeps lists of one of these types


def _check_metadata_value(value: Any, where: str) -> None:
    """What Chroma stores: str (valid Unicode), int (64-bit), float (finite), bool, or a non-empty list of one type."""
    items = value if isinstance(value, list) else [value]
    kinds = {bool if isinstance(v, bool) else next((k for k in _SCALARS if isinstance(v, k)), None) for v in items}
    if not items or None in kinds or len(kinds) > 1:
        raise InputTypeError(
            f"`{where}` must be a str, int, float or bool, or a non-empty list of one of these types (what Chroma "
            f"stores); got {type(value).__name__} ({value!r:.40}). Convert it, or drop the key.")
    for v in items:
        if isinstance(v, str):
            check_text(v, where)
        elif isinstance(v, float) and not math.isfinite(v):  # Chroma drops it and its log store breaks
            raise InputValueError(f"`{where}` must be a finite number; got {v!r}. Drop the key or store a str.")
        elif isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:  # Chroma makes it a float
            raise InputValueError(f"`{where}` must fit in 64 bits (what Chroma stores); got {v!r}. Store it as a str.")


def _check_metadatas(metadatas: Sequence[dict[str, Any]] | None, n: int) -> list[dict[str, Any]] | None:
    if metadatas is None:
        return None
    metadatas = _as_list(metadatas, "metadatas", "one dict per text")
    if len(metadatas) != n:
        raise InputValueError(f"`metadatas` must have one dict per text ({n}); got {len(metadatas)}.")
    for i, value in enumerate(metadatas):
        if not isinstance(value, dict) or not value:
            raise InputTypeError(f"`metadatas[{i}]` must be a non-empty dict (Chroma refuses empty ones); got {value!r}.")
        for key, item in value.items():
            if not isinstance(key, str) or not key or key[0] in "#$" or key == "chroma:document":
                raise InputValueError(f"`metadatas[{i}]` keys must be non-empty str not starting with '#' or '$' "
                                      f"(nor 'chroma:document', which Chroma reserves); got {key!r}.")
            check_text(key, f"metadatas[{i}] key")
            _check_metadata_value(item, f"metadatas[{i}][{key!r}]")
    return metadatas


def _first_occurrences(ids: list[str], texts: list[str]) -> list[int]:
    """Positions to add: each id once; the same id for two different texts is an error."""
    first: dict[str, int] = {}
    for i, value in enumerate(ids):
        j = first.setdefault(value, i)
        if j != i and texts[j] != texts[i]:
            raise InputValueError(f"`ids[{j}]` and `ids[{i}]` are both {value!r} but their texts differ. Make ids unique.")
    return sorted(first.values())


def split_passages(text: str, max_words: int = 120) -> list[str]:
    """Split a document into passages of about ``max_words`` words at paragraph and sentence ends.

    Paragraphs are separated by blank lines; short paragraphs are joined, long ones are split at
    sentence ends; a Markdown heading stays with the paragraph that follows it.

    Example:
        >>> split_passages("# Title\\n\\nFirst paragraph.\\n\\nSecond one.", max_words=4)
        ['# Title\\nFirst paragraph.', 'Second one.']
    """
    check_positive_int(max_words, "max_words")
    passages: list[str] = []
    current: list[str] = []
    for piece in _pieces(text, max_words):
        if current and (piece.startswith("#") or _overflows(current, piece, max_words)):
            passages.append("\n".join(current))
            current = []
        current.append(piece)
    if current:
        passages.append("\n".join(current))
    return passages


def _overflows(current: list[str], piece: str, max_words: int) -> bool:
    """Adding ``piece`` would pass ``max_words`` (a lone heading always takes its paragraph)."""
    if len(current) == 1 and current[0].startswith("#"):
        return False
    return sum(len(p.split()) for p in current) + len(piece.split()) > max_words


def _pieces(text: str, max_words: int) -> Iterator[str]:
    for paragraph in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        heading, _, body = paragraph.partition("\n") if paragraph.startswith("#") else ("", "", paragraph)
        if heading:
            yield heading.strip()
        if not body.strip():
            continue
        if len(body.split()) <= max_words or body.lstrip().startswith("```"):
            yield body.strip()
        else:
            yield from (s.strip() for s in _SENTENCE_END.split(body) if s.strip())


def iter_text_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The ``.txt``/``.md`` files named by ``paths`` (folders are searched recursively), sorted, unique.

    Raises:
        InputValueError: A path does not exist, or names a file that is not ``.txt``/``.md``.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES))
        elif path.is_file():
            if path.suffix.lower() not in TEXT_SUFFIXES:
                raise InputValueError(f"`{path}` is not a .txt or .md file; index only {', '.join(TEXT_SUFFIXES)} files.")
            found.append(path)
        else:
            raise InputValueError(f"`{path}` does not exist; pass .txt/.md files or folders holding them.")
    return list(dict.fromkeys(found))


def iter_image_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The ``.png``/``.jpg``/``.jpeg`` files named by ``paths`` or found in its folders (recursively), sorted, unique.

    Other files named in ``paths`` are left out (they are :func:`iter_text_files`' to judge).

    Raises:
        InputValueError: A path does not exist.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(path)
        else:
            raise InputValueError(f"`{path}` does not exist; pass .txt/.md/.png/.jpg files or folders holding them.")
    return list(dict.fromkeys(found))


def read_passages(paths: Iterable[str | os.PathLike], max_words: int = 120) -> list[Passage]:
    """Read and split every ``.txt``/``.md`` file under ``paths`` (UTF-8) into :class:`Passage` items."""
    passages: list[Passage] = []
    for path in iter_text_files(paths):
        text = path.read_text(encoding="utf-8", errors="replace")
        # A file name that is not UTF-8 reaches Python with lone surrogates; store (and hash) a readable form.
        source = path.as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        passages.extend(Passage(p, source, i) for i, p in enumerate(split_passages(text, max_words)))
    return passages
