"""Downloads that cannot run away: a size cap, a stall timeout and an overall deadline.

``fetch-runs`` reads a manifest and an archive from a server that may be slow, broken
or hostile: one that drips a byte every few seconds, answers 500, redirects in a loop,
or sends without end. :func:`download` copies a URL's body into an open file and stops
with a :class:`DownloadError` that says which of these happened and what to do: at
``cap`` bytes (the manifest's size of the file), after :data:`STALL_S` without a byte,
and at the :class:`Deadline` shared by every download of one command. Introduced with
the bundle's fault handling (issue 28); :mod:`makemore.runs.bundle` is its one user.
"""
from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import BinaryIO

from .. import env

STALL_S = 30.0  # seconds without a byte before a download is given up
DEADLINE_ENV = "MAKEMORE_FETCH_TIMEOUT"
DEADLINE_S = 900.0  # seconds for a whole fetch-runs, unless $MAKEMORE_FETCH_TIMEOUT says
CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A download failed or was cut off; ``status`` 1 for a fault of the network or
    server, 2 when the source is not what it claims (a missing or oversized file)."""

    def __init__(self, message: str, status: int = 1, code: int | None = None):
        super().__init__(message)
        self.status, self.code = status, code  # code: the HTTP status, if one came


class Deadline:
    """One command's time for all its downloads: :data:`DEADLINE_S`, or
    ``$MAKEMORE_FETCH_TIMEOUT`` seconds, from now."""

    def __init__(self, seconds: float | None = None):
        self.seconds = (env.number(DEADLINE_ENV, DEADLINE_S, minimum=0.001)
                        if seconds is None else seconds)
        self.end = time.monotonic() + self.seconds

    def left(self, url: str) -> float:
        """Seconds left; a :class:`DownloadError` naming ``url`` once there are none."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise DownloadError(f"gave up on {url} after {self.seconds:g} s ({DEADLINE_ENV}): "
                                f"the server is too slow; try again later, or raise "
                                f"{DEADLINE_ENV}.")
        return left


def copy_capped(read: Callable[[int], bytes], out: BinaryIO, cap: int, what: str,
                deadline: Deadline | None = None) -> int:
    """``read(n)`` into ``out`` until it returns ``b""``; past ``cap`` bytes a
    :class:`DownloadError` (status 2). Returns the bytes copied."""
    n = 0
    while True:
        if deadline is not None:
            deadline.left(what)
        chunk = read(CHUNK)
        if not chunk:
            return n
        n += len(chunk)
        if n > cap:
            raise DownloadError(f"{what} is larger than the {cap:,} bytes allowed for it: it "
                                f"is not the file it should be (a wrong or hostile source); "
                                f"check the address.", status=2)
        out.write(chunk)


class Capped:
    """A stream that gives at most ``limit`` bytes of ``f`` and then a
    :class:`DownloadError` (status 2): e.g. an archive unpacked, whose headers could
    otherwise claim gigabytes from a few compressed kilobytes (a gzip bomb)."""

    def __init__(self, f, limit: int, what: str):
        self.f, self.left, self.limit, self.what = f, limit, limit, what

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(self.left + 1 if n is None or n < 0 else min(n, self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise DownloadError(f"{self.what} unpacks to more than the {self.limit:,} bytes "
                                f"allowed for it; refusing it (a damaged or hostile file).",
                                status=2)
        return data


def _failure(url: str, e: BaseException) -> DownloadError:
    """What a failed request means, and what to do about it."""
    if isinstance(e, urllib.error.HTTPError) and e.code in (404, 410):
        return DownloadError(f"could not download {url} (HTTP {e.code}: nothing there).",
                             status=2, code=e.code)
    if isinstance(e, urllib.error.HTTPError) and 300 <= e.code < 400:
        return DownloadError(f"could not download {url}: the server redirects in a loop "
                             f"(HTTP {e.code}); check the address, or try again later.",
                             code=e.code)
    if isinstance(e, urllib.error.HTTPError):
        return DownloadError(f"could not download {url}: the server answered HTTP {e.code} "
                             f"({e.reason}); try again later.", code=e.code)
    if isinstance(e, TimeoutError | socket.timeout):
        return DownloadError(f"could not download {url}: no answer for {STALL_S:g} s; try "
                             f"again later.")
    reason = getattr(e, "reason", e)
    return DownloadError(f"could not download {url} ({type(reason).__name__}: {reason}); "
                         f"check the network and the address.")


def download(url: str, out: BinaryIO, cap: int, deadline: Deadline) -> int:
    """``url``'s body into the open file ``out``: at most ``cap`` bytes, before the
    ``deadline``, and never more than :data:`STALL_S` between two reads. Returns the
    bytes written. Errors writing ``out`` (a full disk) are raised as they are."""
    try:
        resp = urllib.request.urlopen(url, timeout=min(STALL_S, deadline.left(url)))
    except (OSError, ValueError, http.client.HTTPException) as e:  # HTTPError, URLError too
        raise _failure(url, e) from e
    with resp:
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > cap:
            raise DownloadError(f"{url} is {int(length):,} bytes, more than the {cap:,} bytes "
                                f"allowed for it: it is not the file it should be; check the "
                                f"address.", status=2)
        # the socket under the response, to wait for the next byte no longer than is left
        sock = getattr(getattr(resp.fp, "raw", None), "_sock", None)

        def read(n: int) -> bytes:
            if sock is not None:
                sock.settimeout(max(0.01, min(STALL_S, deadline.left(url))))
            try:
                return resp.read1(n)
            except (OSError, http.client.HTTPException) as e:
                deadline.left(url)  # a timeout at the deadline is the deadline
                raise _failure(url, e) from e

        return copy_capped(read, out, cap, url, deadline)
