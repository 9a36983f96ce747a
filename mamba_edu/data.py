"""A character corpus built offline from Python's own standard library (lesson 07).

Every Python install carries the source of its standard library, and its docstrings are
English prose with code in it: a language-modelling corpus that needs no download. We walk the
library's ``.py`` files in sorted order (leaving out ``site-packages`` and the test suites), parse
each with :mod:`ast`, and take the module, class and function docstrings in :func:`ast.walk`
order, separated by a blank line, until about a million characters. The text depends only on
the Python version (pinned by the project), so it is cached under ``data/cache/`` (git-ignored)
with its sha256 and a provenance line, and rebuilt when either no longer matches.

Layouts: token ids are 1-D int64 arrays (L,); :func:`random_windows` returns (batch, L) inputs
and the same windows shifted by one as targets.
"""

from __future__ import annotations

import ast
import hashlib
import json
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mamba_edu import contract

__all__ = [
    "build_corpus",
    "load_corpus",
    "Corpus",
    "CharVocab",
    "train_val_split",
    "random_windows",
    "DEFAULT_CACHE",
]

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "data" / "cache"
CORPUS_NAME = "stdlib_docstrings"
SEPARATOR = "\n\n"
_SKIP_DIRS = {"site-packages", "test", "tests", "idle_test"}  # third-party code; test fixtures


_check_int = contract.positive_int  # the course's one wording for sizes


def _stdlib_files(root):
    return sorted(
        p for p in Path(root).rglob("*.py") if not _SKIP_DIRS & set(p.relative_to(root).parts)
    )


def build_corpus(max_chars=1_000_000, stdlib=None) -> tuple[str, str]:
    """Build the text: (text, provenance line). Docstrings are taken whole, file after file in
    sorted path order, until the text reaches ``max_chars`` (it may end a docstring past it,
    never inside one). ``stdlib`` defaults to the running Python's library folder."""
    max_chars = _check_int("max_chars", max_chars, 1)
    root = Path(sysconfig.get_paths()["stdlib"] if stdlib is None else stdlib)
    if not root.is_dir():
        raise FileNotFoundError(f"expected stdlib to be a folder of Python sources, got {root}")
    pieces, size, n_files, last = [], 0, 0, None
    for path in _stdlib_files(root):
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (
            SyntaxError,
            ValueError,
        ):  # a file this Python cannot parse holds no docstrings for us
            continue
        n_files += 1
        last = path.relative_to(root).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    pieces.append(doc)
                    size += len(doc) + len(SEPARATOR)
                    if size >= max_chars:
                        break
        if size >= max_chars:
            break
    text = SEPARATOR.join(pieces)
    provenance = (
        f"docstrings (module, class, function; ast.walk order) of {n_files} files of the "
        f"{platform.python_implementation()} {platform.python_version()} standard library, "
        f"sorted paths up to {last} (that one possibly in part), excluding {sorted(_SKIP_DIRS)}; max_chars={max_chars}"
    )
    return text, provenance


@dataclass(frozen=True)
class Corpus:
    """The text, its sha256 (hex) and where it came from."""

    text: str
    sha256: str
    provenance: str


def _sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_corpus(max_chars=1_000_000, cache_dir=None, rebuild=False) -> Corpus:
    """The corpus from the cache (``data/cache/`` by default), built first if absent, if
    ``rebuild`` is set, or if the cached file's checksum or provenance does not match this
    Python. Writes ``stdlib_docstrings.txt`` and ``stdlib_docstrings.json`` (sha256, provenance)."""
    max_chars = _check_int("max_chars", max_chars, 1)
    cache = Path(DEFAULT_CACHE if cache_dir is None else cache_dir)
    stem = f"{CORPUS_NAME}_{max_chars}"
    text_path, meta_path = cache / f"{stem}.txt", cache / f"{stem}.json"
    expected_version = f"{platform.python_implementation()} {platform.python_version()} "
    if not rebuild and text_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        text = text_path.read_text(encoding="utf-8")
        if _sha256(text) == meta.get("sha256") and expected_version in meta.get("provenance", ""):
            return Corpus(text, meta["sha256"], meta["provenance"])
    text, provenance = build_corpus(max_chars)
    corpus = Corpus(text, _sha256(text), provenance)
    cache.mkdir(parents=True, exist_ok=True)
    text_path.write_text(text, encoding="utf-8")
    meta = {"sha256": corpus.sha256, "provenance": provenance, "chars": len(text)}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return corpus


class CharVocab:
    """One token per distinct character of a text, ids in sorted character order."""

    def __init__(self, text):
        if not isinstance(text, str) or not text:
            raise ValueError("expected text: a non-empty str to take the characters from")
        self.chars = sorted(set(text))
        self._ids = {c: i for i, c in enumerate(self.chars)}

    @property
    def size(self) -> int:
        return len(self.chars)

    def __len__(self):
        return len(self.chars)

    def encode(self, text) -> np.ndarray:
        """str → int64 ids (L,). Raises KeyError naming a character the vocabulary lacks."""
        if not isinstance(text, str):
            raise TypeError(f"expected text to be a str, got {type(text).__name__}")
        try:
            return np.fromiter((self._ids[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as err:
            raise KeyError(f"character {err.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids) -> str:
        """ids (any shape that flattens to L) → str."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"expected integer ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"expected ids in [0, {self.size}), got [{ids.min()}, {ids.max()}]")
        return "".join(self.chars[i] for i in ids.ravel())


def train_val_split(ids, val_fraction=0.1):
    """The fixed split: the first (1 − val_fraction) of the sequence trains, the rest validates
    (contiguous, so no validation text leaks into training windows). ids: (L,)."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"expected ids of shape (L,), got {ids.shape}")
    if isinstance(val_fraction, bool) or not 0 < val_fraction < 1:
        raise ValueError(f"expected 0 < val_fraction < 1, got {val_fraction!r}")
    cut = int(round(len(ids) * (1 - val_fraction)))
    if cut < 2 or len(ids) - cut < 2:
        raise ValueError(
            f"expected ids long enough for two parts of >= 2 tokens, got L = {len(ids)}"
        )
    return ids[:cut], ids[cut:]


def random_windows(ids, batch, length, rng):
    """``batch`` windows of ``length`` + 1 tokens at random offsets of ids (L,): returns
    (inputs (batch, length), targets (batch, length)), the targets shifted by one position.
    ``rng`` is a numpy Generator (or a seed)."""
    ids = np.asarray(ids)
    batch = _check_int("batch", batch, 1)
    length = _check_int("length", length, 1)
    if ids.ndim != 1 or len(ids) < length + 1:
        raise ValueError(
            f"expected ids of shape (L,) with L >= length + 1 = {length + 1}, got {ids.shape}"
        )
    rng = np.random.default_rng(rng)
    starts = rng.integers(0, len(ids) - length, size=batch)
    windows = ids[starts[:, None] + np.arange(length + 1)]
    return windows[:, :-1], windows[:, 1:]
