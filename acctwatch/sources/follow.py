"""Following live log files: every complete line exactly once, across rotations, restarts and crashes.

Reading is done by :mod:`pygtail` (the design card's dependency) through :class:`ByteTail`, a subclass
that fixes its pitfalls for a daemon that must not lose or repeat a line:

* pygtail opens files in strict text mode, so one invalid UTF-8 byte raises: ``ByteTail`` reads bytes
  (``.gz``/``.bz2``/``.xz`` are recognised by content, as in replay) and leaves decoding to the parser,
  which counts bad bytes instead of failing;
* pygtail returns a partial last line that the writer has not finished (and then loses the rest):
  ``ByteTail`` only returns lines ending in ``\\n`` and leaves the partial one for the next poll (a
  partial last line of a file that was rotated away is returned once the file is finished);
* pygtail writes its offset to an ``.offset`` file as soon as it reaches the end of the file, i.e. before
  the events of those lines are committed: here the offset lives in memory and the daemon stores it in the
  store's ``checkpoints`` table in the same transaction as the incidents and detector state it led to;
* pygtail recognises a rotated file by its inode only, and only when it is constructed. Inodes are reused
  as soon as a file is deleted (``.1`` compressed to ``.1.gz``), compressing changes the inode, and
  ``copytruncate`` keeps it. :class:`FileFollower` therefore identifies a file by a fingerprint (a hash of
  its first bytes, up to 1 KiB) and checks for truncation and replacement on every poll, while running
  as well as after a restart.

Rotation kinds handled: rename + create (``mail.log`` -> ``mail.log.1``), ``delaycompress``, compressed at
once (``mail.log.1.gz``; the old file is still open, so it is read to the end), ``dateext``
(``mail.log-20261126``), ``copytruncate`` (the rest of the line range is read from the copy), and several
rotations while acctwatch was stopped (the whole chain newer than the checkpoint is read, oldest first).

Known limit (inherent to ``copytruncate``, which logrotate itself documents as lossy): a truncation is
recognised by the fingerprint of what was read, so lines of a file of which not one complete line had
been read yet, copied and truncated before the next poll, are only in the copy and are not read. Use
rename rotation (``create``) for mail logs; rsyslog/Postfix/Dovecot all reopen their logs on a signal.
"""

from __future__ import annotations

import glob
import hashlib
import io
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple

from pygtail import Pygtail

from .files import open_binary, order_oldest_first, rotation_key

log = logging.getLogger(__name__)

SIG_BYTES = 1024  # fingerprint: hash of the first bytes of a file (fewer while the file is shorter)
MAX_PARTIAL = 1 << 20  # a "line" without newline this long is taken as a line (never stuck on garbage)
ROTATE_GRACE = 1.0  # seconds to keep reading a renamed file that the writer may still be appending to


@dataclass
class Line:
    raw: bytes  # without the line ending
    file: str  # the file it was read from (the followed path, or the rotated name it had)
    lineno: int  # line number in that file


class Run(NamedTuple):
    """Consecutive lines of one file: what the daemon hands to the parser's loop in one call."""

    file: str
    lineno: int  # of the first line
    raws: list[bytes]


def lines_of(runs: list[Run]) -> list[Line]:
    return [Line(raw, r.file, r.lineno + i) for r in runs for i, raw in enumerate(r.raws)]


def runs_of(lines: list[Line]) -> list[Run]:
    """The runs of *lines* (consecutive line numbers of one file)."""
    out: list[Run] = []
    for ln in lines:
        if out and out[-1].file == ln.file and out[-1].lineno + len(out[-1].raws) == ln.lineno:
            out[-1].raws.append(ln.raw)
        else:
            out.append(Run(ln.file, ln.lineno, [ln.raw]))
    return out


class ByteTail(Pygtail):  # type: ignore[misc]
    """pygtail reading one file as bytes, complete lines only, with the offset kept in memory."""

    def __init__(self, filename: str, offset: int = 0, lineno: int = 0, fh: BinaryIO | None = None) -> None:
        # os.devnull as offset file: exists, is empty, so pygtail neither reads nor guesses anything
        super().__init__(filename, offset_file=os.devnull, copytruncate=False, save_on_end=False,
                         full_lines=True)
        self.offset = offset
        self.lineno = lineno
        self.final = False  # the writer is done with this file: a partial last line is a line
        if fh is not None:
            self.fh = fh
            fh.seek(offset)

    def _filehandle(self) -> BinaryIO:
        if not self.fh or self._is_closed():
            self._counter += 1
            self.fh = open_binary(self.filename)
            self.fh.seek(self.offset)
        return self.fh  # type: ignore[no-any-return]

    def _get_next_line(self) -> bytes:
        fh = self._filehandle()
        line = fh.readline(MAX_PARTIAL)
        if not line:
            raise StopIteration
        if not line.endswith(b"\n") and len(line) < MAX_PARTIAL and not self.final:
            fh.seek(self.offset)  # unfinished: leave it for the next poll
            raise StopIteration
        self.offset += len(line)
        self.lineno += 1
        return line  # type: ignore[no-any-return]

    def _is_new_file(self) -> bool:
        return False  # rotation is decided by FileFollower (fingerprints), not by pygtail's inode check

    def update_offset_file(self) -> None:  # offsets go to the store, committed with the events
        return None

    def write_offset_to_file(self, offset: Any) -> None:
        return None

    def __del__(self) -> None:
        try:
            if self.fh is not None and not self._is_closed():
                self.fh.close()
        except Exception:  # interpreter shutdown
            pass

    def close(self) -> None:
        if self.fh is not None and not self._is_closed():
            self.fh.close()
        self.fh = None

    def read_lines(self, limit: int) -> list[bytes]:
        """Up to *limit* complete lines: what ``next()`` gives line by line (this class turns pygtail's
        rotation and offset-file handling off). A plain file is read in blocks split in C (a backlog reads
        fast); compressed files and any line near ``MAX_PARTIAL`` go line by line."""
        fh = self._filehandle()
        out: list[bytes] = []
        if isinstance(fh, io.BufferedReader):
            out = self._read_blocks(fh, limit)
        if len(out) < limit:
            out += self._read_each(fh, limit - len(out))
        return out

    def _read_blocks(self, fh: BinaryIO, limit: int) -> list[bytes]:
        """Whole lines from blocks of ``MAX_PARTIAL`` bytes; stops (the position at the next line start) at a
        block with a line of ``MAX_PARTIAL - 1`` bytes or more, which :meth:`_read_each` cuts as readline
        would, and at an unfinished last line."""
        out: list[bytes] = []
        offset = self.offset
        while len(out) < limit:
            data = fh.read(MAX_PARTIAL)
            if not data:
                break
            parts = data.split(b"\n")
            tail = parts.pop()
            if len(tail) >= MAX_PARTIAL - 1 or (parts and max(map(len, parts)) >= MAX_PARTIAL - 1):
                break  # a giant line: cut the way readline(MAX_PARTIAL) cuts it
            room = limit - len(out)
            if len(parts) > room:
                del parts[room:]
                tail = b"more"
            if not parts:
                break  # no newline in what is there: an unfinished line, or the file's last (final) one
            offset += sum(map(len, parts)) + len(parts)
            out += [p.rstrip(b"\r") for p in parts] if b"\r" in data else parts
            if len(data) < MAX_PARTIAL:
                break  # the end of the file (an unfinished line after it is left to _read_each)
            if tail:
                fh.seek(offset)  # the block cut a line: read it again with the next block
        self.lineno += len(out)
        self.offset = offset
        fh.seek(offset)
        return out

    def _read_each(self, fh: BinaryIO, limit: int) -> list[bytes]:
        readline = fh.readline
        out: list[bytes] = []
        append = out.append
        offset = self.offset
        final = self.final
        while len(out) < limit:
            line = readline(MAX_PARTIAL)
            if not line:
                break
            if not line.endswith(b"\n") and len(line) < MAX_PARTIAL and not final:
                fh.seek(offset)  # unfinished: leave it for the next poll
                break
            offset += len(line)
            append(line.rstrip(b"\r\n"))
        self.offset = offset
        self.lineno += len(out)
        return out

    def ino(self) -> tuple[int, int]:
        st = os.fstat(self._filehandle().fileno())
        return st.st_ino, st.st_dev


def fingerprint(name: str, length: int) -> str | None:
    """Hex hash of the first *length* bytes of *name* (decompressed), None if unreadable or shorter."""
    try:
        fh = open_binary(name)
    except OSError:
        return None
    try:
        data = fh.read(length)
    except (OSError, EOFError):
        return None
    finally:
        fh.close()
    if len(data) < length:
        return None
    return hashlib.sha256(data).hexdigest()[:32]


def rotated_chain(path: str) -> list[str]:
    """Rotated siblings of *path* (``.1``, ``.2.gz``, ``-20261126``, ...), oldest first, *path* excluded."""
    base = os.path.basename(path)
    names = set(glob.glob(glob.escape(path) + ".*") + glob.glob(glob.escape(path) + "-*"))
    out = [n for n in names if rotation_key(n)[0] == base and rotation_key(n)[1:] != (0, "~")
           and not n.endswith((".offset", ".lock"))]
    return order_oldest_first(out)


class FileFollower:
    """Follows one path (the live file of a rotation chain). Position: see :meth:`position`."""

    def __init__(self, path: str, checkpoint: dict[str, Any] | None = None, from_start: bool = False,
                 rotate_grace: float = ROTATE_GRACE) -> None:
        self.path = os.path.abspath(path)
        self.rotate_grace = rotate_grace
        self.tail: ByteTail | None = None
        self.queue: list[tuple[str, int, int]] = []  # files to read after the current one: (name, offset, lineno)
        self.sig: str | None = None
        self.sig_len = 0
        self.ino: tuple[int, int] | None = None
        self._rotated_at: float | None = None
        self._last_size: tuple[int, int] | None = None
        self._reading_rotated = False  # current tail is a rotated file (finished by the writer)
        self._start(checkpoint, from_start)

    # -- start -------------------------------------------------------------------------------------
    def _start(self, cp: dict[str, Any] | None, from_start: bool) -> None:
        if cp is None:
            if not os.path.exists(self.path):
                log.info("%s does not exist yet: following it from its creation", self.path)
                return
            if from_start:
                self._open(self.path, 0, 0)
            else:
                off, n = _end_of_last_line(self.path)
                self._open(self.path, off, n)
            return
        offset, lineno = int(cp.get("offset", 0)), int(cp.get("lineno", 0))
        sig, sig_len = cp.get("sig"), int(cp.get("sig_len", 0))
        ino = (int(cp.get("ino", -1)), int(cp.get("dev", -1)))
        if self._matches(self.path, sig, sig_len, offset, ino):
            self._open(self.path, offset, lineno)
            return
        chain = rotated_chain(self.path)
        for i, name in enumerate(chain):
            if self._matches(name, sig, sig_len, offset, ino):
                log.warning("%s was rotated while acctwatch was stopped: reading the rest of %s, then %s",
                            self.path, name, ", ".join([*chain[i + 1:], self.path]))
                self.queue = [(n, 0, 0) for n in chain[i + 1:]]
                if os.path.exists(self.path):
                    self.queue.append((self.path, 0, 0))
                self._open(name, offset, lineno, rotated=True)
                return
        if os.path.exists(self.path):
            log.warning("%s: the file of the last checkpoint (offset %d) is gone and no rotated file matches "
                        "it: reading %s from its start", self.path, offset, self.path)
            self._open(self.path, 0, 0)
        else:
            log.warning("%s: the file of the last checkpoint is gone; waiting for it to be created", self.path)

    @staticmethod
    def _matches(name: str, sig: str | None, sig_len: int, offset: int, ino: tuple[int, int]) -> bool:
        try:
            st = os.stat(name)
        except OSError:
            return False
        if sig_len > 0 and sig:
            if fingerprint(name, sig_len) != sig:
                return False
            if _compressed(name):
                return True  # size on disk says nothing; the fingerprint is enough
            return st.st_size >= offset
        # nothing read yet: only the inode can tell (a new empty file is the same "nothing")
        return (st.st_ino, st.st_dev) == ino and st.st_size >= offset

    def _open(self, name: str, offset: int, lineno: int, rotated: bool = False,
              fh: BinaryIO | None = None) -> None:
        if self.tail is not None:
            self.tail.close()
        try:
            self.tail = ByteTail(name, offset, lineno, fh=fh)
            self.ino = self.tail.ino()
        except OSError as exc:
            log.warning("cannot read %s: %s", name, exc)
            self.tail = None
            return
        self.tail.final = rotated
        self._reading_rotated = rotated
        self._rotated_at = None
        self._last_size = None
        self.sig, self.sig_len = None, 0
        self._update_sig()

    def _update_sig(self) -> None:
        t = self.tail
        if t is None or self.sig_len >= SIG_BYTES or t.offset <= self.sig_len:
            return
        n = min(t.offset, SIG_BYTES)
        sig = _fh_fingerprint(t, n)  # through the open handle: right even if renamed away under us
        if sig is not None:
            self.sig, self.sig_len = sig, n

    # -- polling -----------------------------------------------------------------------------------
    def poll(self, limit: int = 10_000) -> list[Line]:
        """Complete new lines (at most *limit*), in file order; the position advances past them."""
        return lines_of(self.poll_runs(limit))

    def poll_runs(self, limit: int = 10_000) -> list[Run]:
        """:meth:`poll` as runs of consecutive lines of one file (no object per line)."""
        out: list[Run] = []
        n = 0
        for _ in range(16):  # bounded: a few file switches per poll at most
            if self.tail is None and not self._try_open_new():
                break
            if not self._reading_rotated and self._truncated():  # before reading: the bytes may be new ones
                self._copytruncated()
            t = self.tail
            assert t is not None
            got = t.read_lines(limit - n)
            if got:
                out.append(Run(t.filename, t.lineno - len(got) + 1, got))
                n += len(got)
                self._update_sig()
            if n >= limit:
                break
            if self._reading_rotated:
                if self.queue:  # done with this rotated file: go on with the next in the chain
                    name, off, k = self.queue.pop(0)
                    self._open(name, off, k, rotated=name != self.path)
                    continue
                if t.filename != self.path:  # finished the last rotated file: the live one comes next
                    self.tail.close()
                    self.tail = None
                    continue
                self._reading_rotated = False
                t.final = False
            before = len(out)
            if not self._check_rotation(bool(got), out):
                break
            n += sum(len(r.raws) for r in out[before:])
        return out

    def _try_open_new(self) -> bool:
        if not os.path.exists(self.path):
            return False
        log.info("%s: following (new file)", self.path)
        self._open(self.path, 0, 0)
        return self.tail is not None

    def _check_rotation(self, got_data: bool, out: list[Run]) -> bool:
        """True when the current file was switched and reading should go on in this poll."""
        t = self.tail
        assert t is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return False  # gone for now (rotated, not yet recreated): keep the open file
        if (st.st_ino, st.st_dev) != self.ino:
            now = time.monotonic()
            if self._rotated_at is None:
                self._rotated_at = now
                log.info("%s was rotated (new inode): finishing the old file first", self.path)
            if got_data or now - self._rotated_at < self.rotate_grace:
                return False  # the writer may still append to the old file until it reopens
            t.final = True
            rest = t.read_lines(1)  # an unterminated last line of the old file
            if rest:
                out.append(Run(t.filename, t.lineno, [rest[0]]))
            # rotated more than once since the last poll? read the files between ours and the live one
            chain = rotated_chain(self.path)
            ours = self.ino or (-1, -1)
            idx = next((i for i, n in enumerate(chain) if self._matches(n, self.sig, self.sig_len, 0, ours)), None)
            self.queue = [(n, 0, 0) for n in chain[idx + 1:]] if idx is not None else []
            if self.queue:
                log.warning("%s was rotated more than once since the last poll: reading %s too", self.path,
                            ", ".join(n for n, _, _ in self.queue))
                self.queue.append((self.path, 0, 0))
                name, off, n = self.queue.pop(0)
                self._open(name, off, n, rotated=True)
            else:
                self._open(self.path, 0, 0)
            return True
        return False

    def _truncated(self) -> bool:
        """The live file (same inode) is shorter than what was read, or starts differently (copytruncate)."""
        t = self.tail
        assert t is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        if (st.st_ino, st.st_dev) != self.ino:
            return False
        key = (st.st_size, st.st_mtime_ns)
        if key == self._last_size:
            return False
        self._last_size = key
        return st.st_size < t.offset or bool(self.sig_len and fingerprint(self.path, self.sig_len) != self.sig)

    def _copytruncated(self) -> None:
        t = self.tail
        assert t is not None
        offset, lineno, sig, sig_len = t.offset, t.lineno, self.sig, self.sig_len
        chain = rotated_chain(self.path)
        for i in range(len(chain) - 1, -1, -1):  # newest first: the copy was just made
            name = chain[i]
            if self._matches(name, sig, sig_len, offset, (-1, -1)) and sig_len > 0:
                log.info("%s was truncated (copytruncate): reading the rest from %s", self.path, name)
                self.queue = [(n, 0, 0) for n in chain[i + 1:]] + [(self.path, 0, 0)]
                self._open(name, offset, lineno, rotated=True)
                return
        log.warning("%s was truncated and no rotated copy matches what was read: reading it from the start "
                    "(lines written between the last poll and the truncation may be missing)", self.path)
        self._open(self.path, 0, 0)

    def position(self) -> dict[str, Any]:
        """JSON position of the next unread byte: fingerprinted file + offset + line number."""
        t = self.tail
        if t is None:
            return {"path": self.path, "file": None, "offset": 0, "lineno": 0, "sig": None, "sig_len": 0,
                    "ino": -1, "dev": -1}
        ino, dev = self.ino or (-1, -1)
        return {"path": self.path, "file": t.filename, "offset": t.offset, "lineno": t.lineno,
                "sig": self.sig, "sig_len": self.sig_len, "ino": ino, "dev": dev}

    def close(self) -> None:
        if self.tail is not None:
            self.tail.close()
            self.tail = None


def _compressed(name: str) -> bool:
    return name.endswith((".gz", ".bz2", ".xz"))


def _fh_fingerprint(t: ByteTail, n: int) -> str | None:
    fh = t._filehandle()
    if _compressed(t.filename) or not isinstance(fh, io.BufferedReader):
        return fingerprint(t.filename, n)
    try:
        data = os.pread(fh.fileno(), n, 0)
    except (OSError, ValueError):
        return None
    return hashlib.sha256(data).hexdigest()[:32] if len(data) == n else None


def _end_of_last_line(path: str) -> tuple[int, int]:
    """(offset after the last complete line, number of lines before it): where "from the end" starts."""
    n = 0
    off = 0
    with open(path, "rb") as fh:
        while True:
            buf = fh.read(1 << 20)
            if not buf:
                break
            nl = buf.rfind(b"\n")
            if nl >= 0:
                n += buf.count(b"\n")
                off = fh.tell() - len(buf) + nl + 1
    return off, n


def expand_globs(patterns: list[str]) -> list[str]:
    """The live files named by *patterns* (globs allowed); rotated and compressed siblings are skipped."""
    out: list[str] = []
    for p in patterns:
        names = sorted(glob.glob(p)) if glob.has_magic(p) else [p]
        for n in names:
            if glob.has_magic(p) and (rotation_key(n)[1:] != (0, "~") or _compressed(n) or os.path.isdir(n)):
                continue
            a = os.path.abspath(n)
            if a not in out:
                out.append(a)
    return out
