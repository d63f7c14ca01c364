"""names.txt: download, checks, vocabulary and the (context -> next char) datasets.

The dataset is fetched once from the makemore repository with :mod:`pooch`
(checksummed, written atomically) and cached under ``data/`` in the repository.
Offline, point the environment variable ``MAKEMORE_NAMES`` at a local copy: it
is verified against the same sha256 and copied into the cache.

File format rule: one name per line, lower-case ``a``-``z`` only. Surrounding
whitespace (including a Windows ``\\r``) is stripped and blank lines are skipped;
anything else that is not ``a``-``z`` is an error that names the line and the
character.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from . import env

NAMES_URL = ("https://raw.githubusercontent.com/karpathy/makemore/"
             "988aa59e4d8fefa526d06f3b453ad116258398d4/names.txt")
NAMES_SHA256 = "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d"
NAMES_ENV = "MAKEMORE_NAMES"
BOUNDARY = "."  # the token that starts and ends every name
ALPHABET = "abcdefghijklmnopqrstuvwxyz"

REPO_ROOT = env.REPO_ROOT  # (for an editable install or a checkout)


class DataError(RuntimeError):
    """names.txt could not be fetched, verified or parsed; the message says what to do.
    Bad input: the command line exits with status 2."""

    status = 2


def data_dir() -> Path:
    """Where names.txt is cached: ``$MAKEMORE_DATA_DIR`` (relative to the repository
    root) or ``<repo>/data``."""
    return env.path("MAKEMORE_DATA_DIR", REPO_ROOT / "data")


def sha256sum(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, what: str) -> None:
    got = sha256sum(path)
    if got != NAMES_SHA256:
        raise DataError(
            f"{what} {path} has the wrong checksum: expected sha256 {NAMES_SHA256}, "
            f"got {got}. It is not the makemore names.txt (truncated, edited or another "
            f"file); download it again from {NAMES_URL}.")


def _copy_atomic(src: Path, dst: Path) -> None:
    """Copy so that ``dst`` is either absent or complete, never half-written."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch_names(mirror: str | Path | None = None) -> Path:
    """Return the path of a verified ``names.txt``, fetching it if needed.

    Order: an already cached and verified copy under :func:`data_dir`; else the
    local mirror (the ``mirror`` argument or ``$MAKEMORE_NAMES``), verified and
    copied into the cache; else a download of :data:`NAMES_URL` with pooch.
    """
    target = data_dir() / "names.txt"
    if target.exists():
        try:
            _verify(target, "The cached")
            return target
        except DataError:
            target.unlink()  # a stale or corrupt cache: fetch again below
    mirror = mirror or env.path(NAMES_ENV)
    if mirror:
        src = Path(mirror).expanduser()
        if not src.is_file():
            raise DataError(f"{NAMES_ENV}={mirror} does not point at a file. Set it to the "
                            f"path of a local copy of names.txt, or unset it to download.")
        _verify(src, f"The local copy ({NAMES_ENV})")
        _copy_atomic(src, target)
        return target
    import pooch  # imported here: only a download needs it

    try:
        path = pooch.retrieve(NAMES_URL, known_hash=f"sha256:{NAMES_SHA256}",
                              fname="names.txt", path=target.parent, progressbar=False)
    except ValueError as e:  # pooch's checksum mismatch
        raise DataError(f"The downloaded names.txt failed verification ({e}). "
                        f"Try again, or use a verified local copy via {NAMES_ENV}.") from e
    except Exception as e:  # no network, proxy, HTTP error
        raise DataError(
            f"Could not download names.txt from {NAMES_URL} ({type(e).__name__}: {e}). "
            f"If you are offline, point {NAMES_ENV} at a local copy, e.g. "
            f"`export {NAMES_ENV}=/path/to/names.txt`.") from e
    return Path(path)


def parse_words(text: str, source: str = "names.txt") -> list[str]:
    """Split ``text`` into names, enforcing the file-format rule of this module."""
    words = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        word = line.strip()
        if not word:
            continue  # blank lines carry no name
        for ch in word:
            if ch == BOUNDARY:
                raise DataError(
                    f"{source}, line {lineno}: {word!r} contains {BOUNDARY!r}, the token "
                    f"reserved for the start/end of a name. Remove it from the name.")
            if ch not in ALPHABET:
                raise DataError(
                    f"{source}, line {lineno}: {word!r} contains {ch!r}; only lower-case "
                    f"a-z are allowed. Lower-case or transliterate the name.")
        words.append(word)
    if not words:
        raise DataError(f"{source} contains no names (it is empty or blank). "
                        f"Fetch it again or point {NAMES_ENV} at a complete copy.")
    return words


def load_words(path: str | Path | None = None) -> list[str]:
    """The names, in file order (32,033 for the real names.txt).

    With ``path=None`` the verified dataset from :func:`fetch_names` is read; any
    other file is parsed with the same rules but not checksummed.
    """
    p = fetch_names() if path is None else Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist. Pass the path of a names file, or call "
                        f"load_words() with no argument to use the verified dataset.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not UTF-8 text ({e}); save it as UTF-8.") from e
    return parse_words(text, source=str(p))


@dataclass(frozen=True)
class Vocab:
    """``stoi``/``itos`` with ``.`` = 0 and the characters of the data from 1 on."""

    stoi: dict[str, int]
    itos: dict[int, str]

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, s: str) -> list[int]:
        return [self.stoi[ch] for ch in s]

    def decode(self, ix: list[int]) -> str:
        return "".join(self.itos[i] for i in ix)


def build_vocab(words: list[str]) -> Vocab:
    """The lecture's vocabulary: sorted characters of the data, then ``'.'`` = 0."""
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi[BOUNDARY] = 0
    itos = {i: s for s, i in stoi.items()}
    return Vocab(stoi, itos)


def build_dataset(words: list[str], block_size: int = 3,
                  vocab: Vocab | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context -> next character) example of ``words``.

    A context is the previous ``block_size`` tokens, padded with ``'.'`` at the
    start of a name; the last target of each name is ``'.'``. Returns ``X`` of
    shape ``(N, block_size)`` and ``Y`` of shape ``(N,)``, both int64.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    stoi = (vocab or build_vocab(words)).stoi
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + BOUNDARY:
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]  # crop and append
    return (torch.tensor(X, dtype=torch.int64).view(-1, block_size),
            torch.tensor(Y, dtype=torch.int64))


@dataclass(frozen=True)
class Splits:
    """The lecture's train / val / test examples and the vocabulary."""

    Xtr: torch.Tensor
    Ytr: torch.Tensor
    Xdev: torch.Tensor
    Ydev: torch.Tensor
    Xte: torch.Tensor
    Yte: torch.Tensor
    vocab: Vocab
    block_size: int

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``'train'``, ``'val'`` or ``'test'`` -> ``(X, Y)``."""
        table = {"train": (self.Xtr, self.Ytr), "val": (self.Xdev, self.Ydev),
                 "test": (self.Xte, self.Yte)}
        if name not in table:
            raise KeyError(f"unknown split {name!r}; use 'train', 'val' or 'test'")
        return table[name]


def make_splits(words: list[str], block_size: int = 3, seed: int = 42) -> Splits:
    """``random.seed(42)``, shuffle a copy of the names, split 80/10/10 by name.

    On names.txt this gives 182,625 / 22,655 / 22,866 examples, as in the lecture.
    The caller's list is not shuffled in place.
    """
    vocab = build_vocab(words)
    words = list(words)
    random.Random(seed).shuffle(words)  # same stream as random.seed(seed); shuffle
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    Xtr, Ytr = build_dataset(words[:n1], block_size, vocab)
    Xdev, Ydev = build_dataset(words[n1:n2], block_size, vocab)
    Xte, Yte = build_dataset(words[n2:], block_size, vocab)
    return Splits(Xtr, Ytr, Xdev, Ydev, Xte, Yte, vocab, block_size)


def load_splits(block_size: int = 3) -> Splits:
    """The lecture's splits of the verified names.txt (cached in memory, one per block
    size: ``load_splits()``, ``load_splits(3)`` and ``load_splits(block_size=3)`` are
    the same object)."""
    return _splits(block_size)


@lru_cache(maxsize=4)
def _splits(block_size: int) -> Splits:
    return make_splits(load_words(), block_size)
