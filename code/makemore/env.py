"""The process's environment, read in one place: the ``MAKEMORE_*`` variables and the
operating system's errors said as one sentence.

Every variable the package reads goes through :func:`flag`, :func:`path`,
:func:`number` or :func:`text`, so each accepts the same spellings everywhere:

- a yes/no switch takes ``1/true/yes/on`` or ``0/false/no/off`` (any case); unset or
  empty means its default, anything else is an :class:`EnvError` that says so;
- a relative path resolves against the repository root (where ``make`` runs), not
  against the directory the process happens to run in: the book's pages run in
  ``book/``, ``make`` in the root, and both must find the same cache;
- a number must parse and be at least its minimum.

``MAKEMORE_DEBUG=1`` makes the command line show tracebacks instead of one sentence.
Introduced by the run cache's fault handling (see the README, "When something fails").
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

# code/makemore/env.py -> the repository root (for an editable install or a checkout)
REPO_ROOT = Path(__file__).resolve().parents[2]

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
DEBUG = "MAKEMORE_DEBUG"

# the package's yes/no switches and their defaults: the command line checks them all
# before it starts (a typo in one is an error at once, not a surprise an hour later)
SWITCHES = {"MAKEMORE_NO_TRAIN": False, "MAKEMORE_COMPILE": True, DEBUG: False}


class EnvError(ValueError):
    """An environment variable holds a value it does not accept; bad input (exit 2)."""

    status = 2


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or not value.strip() else value.strip()


def flag(name: str, default: bool = False) -> bool:
    """The yes/no variable ``name``: ``1/true/yes/on`` or ``0/false/no/off``."""
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise EnvError(f"{name}={value!r} is not a yes/no value: set it to one of "
                   f"{'/'.join(TRUE)} or {'/'.join(FALSE)}, or unset it.")


def root() -> Path:
    """What relative paths in variables resolve against: the repository root in a
    checkout, else (an installed package, e.g. on Colab) the current directory."""
    return REPO_ROOT if (REPO_ROOT / "pyproject.toml").exists() else Path.cwd()


def path(name: str, default: Path | None = None) -> Path | None:
    """The path variable ``name`` (``~`` expanded, relative to :func:`root`), else
    ``default``."""
    value = _raw(name)
    if value is None:
        return default
    p = Path(value).expanduser()
    return p if p.is_absolute() else root() / p


def number(name: str, default: float, minimum: float = 0.0) -> float:
    """The numeric variable ``name`` (at least ``minimum``), else ``default``."""
    value = _raw(name)
    if value is None:
        return default
    try:
        x = float(value)
    except ValueError:
        x = float("nan")
    if not x >= minimum:  # also NaN
        raise EnvError(f"{name}={value!r} is not a number of at least {minimum:g}: "
                       f"set it to one, or unset it for the default ({default:g}).")
    return x


def text(name: str, default: str | None = None) -> str | None:
    """The variable ``name`` as given (stripped), else ``default``."""
    value = _raw(name)
    return default if value is None else value


def check() -> None:
    """Parse every switch of :data:`SWITCHES`: an :class:`EnvError` for the first bad one."""
    for name, default in SWITCHES.items():
        flag(name, default)


def debug() -> bool:
    """``MAKEMORE_DEBUG``: show tracebacks. A bad value counts as on (it is asked for
    while an error is being reported, where a second error would hide the first)."""
    try:
        return flag(DEBUG)
    except EnvError:
        return True


_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space and run the command again",
    errno.EDQUOT: "the disk quota is used up: free some space and run the command again",
    errno.EROFS: "that file system is read-only: use a writable directory "
                 "(for the run cache, set MAKEMORE_CACHE)",
    errno.EACCES: "permission denied: use a directory you may write to "
                  "(for the run cache, set MAKEMORE_CACHE)",
    errno.EPERM: "permission denied: use a directory you may write to "
                 "(for the run cache, set MAKEMORE_CACHE)",
    errno.ENOTDIR: "a part of that path is a file, not a directory: choose another path",
    errno.EEXIST: "a file of that name is in the way: move it or choose another path",
    errno.EISDIR: "that is a directory, not a file: choose a file name",
    errno.ENOENT: "it does not exist: check the path",
}


def describe(e: OSError, doing: str = "", fallback: str | Path | None = None) -> str:
    """One sentence for an :class:`OSError`: the file (``fallback`` when the error names
    none, as a write to an open file does), the cause and what to do, e.g.
    ``"could not write /c/x.pt: No space left on device; the disk is full: free ..."``."""
    where = e.filename if e.filename is not None else fallback or "a file"
    cause = e.strerror or str(e)
    advice = _ADVICE.get(e.errno, "check that file system and run the command again")
    return f"{doing + ' ' if doing else ''}{where}: {cause}; {advice}."
