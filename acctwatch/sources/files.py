"""Reading archived logs: plain, gzip, bzip2, xz (by content, not by name), or ``-`` for stdin.

Several files are read oldest first, the way logrotate names them:
``mail.log.3.gz mail.log.2.gz mail.log.1 mail.log`` or dateext ``mail.log-20261124.gz mail.log``.
Lines are yielded as bytes (decoding is the parser's job, so a bad byte is counted, not fatal).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

_MAGIC = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))
_ROT_NUM = re.compile(r"^(?P<base>.*?)\.(?P<n>\d+)(?:\.(?:gz|bz2|xz|zst))?$")
_ROT_DATE = re.compile(r"^(?P<base>.*?)[-.](?P<date>\d{8}(?:\d{2,6})?)(?:\.(?:gz|bz2|xz|zst))?$")


class SourceError(OSError):
    """A log source cannot be read; the message says which and why."""


@dataclass
class LogFile:
    name: str  # as given ("-" for stdin)
    mtime: datetime | None  # for the year of RFC3164 lines
    size: int | None


def open_binary(name: str) -> BinaryIO:
    """Open *name* for reading bytes, transparently decompressing gzip/bzip2/xz."""
    if name == "-":
        return sys.stdin.buffer
    try:
        fh = open(name, "rb")  # noqa: SIM115 - returned to the caller
    except OSError as exc:
        raise SourceError(f"cannot read {name}: {exc.strerror}") from exc
    head = fh.read(6)
    fh.seek(0)
    for magic, opener in _MAGIC:
        if head.startswith(magic):
            fh.close()
            return opener(name, "rb")  # type: ignore[return-value]
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        fh.close()
        raise SourceError(f"{name} is zstd-compressed: decompress it first (zstdcat {name} | acctwatch ... -)")
    return fh


def rotation_key(name: str) -> tuple[str, int, str]:
    """Sort key putting rotated files oldest first: higher number older, earlier date older."""
    base = os.path.basename(name)
    m = _ROT_NUM.match(base)
    if m:
        return (m.group("base"), -int(m.group("n")), "")
    m = _ROT_DATE.match(base)
    if m:
        return (m.group("base"), -(10**9), m.group("date"))
    return (base, 0, "~")


def order_oldest_first(names: Iterable[str]) -> list[str]:
    names = list(names)
    if "-" in names:
        return names  # stdin: keep the order the user gave
    return sorted(names, key=rotation_key)


def describe(name: str) -> LogFile:
    if name == "-":
        return LogFile(name, None, None)
    try:
        st = os.stat(name)
    except OSError as exc:
        raise SourceError(f"cannot read {name}: {exc.strerror}") from exc
    return LogFile(name, datetime.fromtimestamp(st.st_mtime, UTC), st.st_size)


def iter_batches(name: str, chunk_size: int = 1 << 20) -> Iterator[list[bytes]]:
    """Lines of one file as bytes without their line ending, in lists of about *chunk_size* bytes (read in
    large chunks and split in C: a replay's loop walks each list, with no Python step per line here)."""
    fh = open_binary(name)
    try:
        carry = b""
        while True:
            data = fh.read(chunk_size)
            if not data:
                break
            if carry:
                data = carry + data
            lines = data.split(b"\n")
            carry = lines.pop()
            if b"\r" in data:
                lines = [raw[:-1] if raw[-1:] == b"\r" else raw for raw in lines]
            if lines:
                yield lines
        if carry:
            yield [carry[:-1] if carry[-1:] == b"\r" else carry]
    except (OSError, EOFError) as exc:  # truncated archive: keep what was read, then say so
        raise SourceError(f"{name}: read error after some lines: {exc}") from exc
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def iter_lines(name: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Lines of one file as bytes, without their line ending (see :func:`iter_batches`)."""
    for lines in iter_batches(name, chunk_size):
        yield from lines


def expand(paths: Iterable[str | Path]) -> list[str]:
    out = []
    for p in paths:
        p = str(p)
        if p != "-" and os.path.isdir(p):
            raise SourceError(f"{p} is a directory: give the log files (e.g. {p}/mail.log*)")
        out.append(p)
    return out

