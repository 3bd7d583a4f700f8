"""Following the systemd journal: ``journalctl --follow --output=json`` filtered to the mail daemons.

Each JSON line goes through the normal parser (:mod:`acctwatch.headers` reads journal JSON). The
position is the ``__CURSOR`` of the last line handed out; the daemon commits it with the events, and a
restart passes it to ``--after-cursor`` so nothing is lost or read twice. First start: from the end
(``--lines=0``), or everything still in the journal with ``--from-start``.

Filters: journald ANDs matches on different fields and ORs matches on the same field, so units and
identifiers are combined as ``_SYSTEMD_UNIT=a _SYSTEMD_UNIT=b + SYSLOG_IDENTIFIER=c ...`` (``+`` is OR).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import subprocess
import threading
import time
from typing import Any

from .follow import Line, Run, runs_of

log = logging.getLogger(__name__)

DEFAULT_UNITS = ("postfix.service", "postfix@-.service", "dovecot.service")
_CURSOR_RE = re.compile(rb'"__CURSOR"\s*:\s*"((?:[^"\\]|\\.)*)"')


def journal_matches(units: list[str] | tuple[str, ...], identifiers: list[str] | tuple[str, ...]) -> list[str]:
    """journalctl match arguments: any of *units* OR any of *identifiers*."""
    groups = []
    if units:
        groups.append([f"_SYSTEMD_UNIT={u}" for u in units])
    if identifiers:
        groups.append([f"SYSLOG_IDENTIFIER={i}" for i in identifiers])
    out: list[str] = []
    for g in groups:
        if out:
            out.append("+")
        out.extend(g)
    return out


def cursor_of(raw: bytes) -> str | None:
    m = _CURSOR_RE.search(raw)
    if m is None:
        return None
    return m.group(1).decode("utf-8", "replace").replace('\\"', '"').replace("\\\\", "\\")


class JournalSource:
    """A ``journalctl --follow`` child process; lines are read by a thread and handed out per poll."""

    name = "journald"

    def __init__(self, checkpoint: dict[str, Any] | None = None, from_start: bool = False,
                 units: list[str] | tuple[str, ...] = DEFAULT_UNITS, identifiers: list[str] | tuple[str, ...] = (),
                 command: str = "journalctl", extra_args: list[str] | tuple[str, ...] = (),
                 follow: bool = True) -> None:
        self.cursor: str | None = (checkpoint or {}).get("cursor")
        self.from_start = from_start
        self.follow = follow  # False (--once): read what is there and stop
        self.done = False
        self.command = command
        self.extra_args = list(extra_args)
        self.matches = journal_matches(units, identifiers)
        self.lines = 0
        self._q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._restarts = 0
        self._next_start = 0.0
        self._start()

    def argv(self) -> list[str]:
        argv = [self.command, "--output=json", "--no-pager", "--quiet", *self.extra_args]
        if self.follow:
            argv.insert(1, "--follow")
        if self.cursor:  # continue after the last line handed out (committed, or of this run)
            argv.append(f"--after-cursor={self.cursor}")
        elif self.from_start:
            if self.follow:
                argv.append("--lines=all")
        else:
            argv.append("--lines=0")
        return argv + self.matches

    def _start(self) -> None:
        argv = self.argv()
        log.info("journald: running %s", " ".join(argv))
        try:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                          stderr=None, bufsize=0, start_new_session=True)
        except OSError as exc:
            log.error("journald: cannot run %s: %s", argv[0], exc)
            self._proc = None
            self._next_start = time.monotonic() + 5
            return
        assert self._proc.stdout is not None
        self._thread = threading.Thread(target=self._reader, args=(self._proc.stdout,), daemon=True,
                                        name="journalctl-reader")
        self._thread.start()

    def _reader(self, stream: Any) -> None:
        buf = b""
        while True:
            chunk = stream.read1(1 << 16) if hasattr(stream, "read1") else os.read(stream.fileno(), 1 << 16)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for ln in lines:
                if ln:
                    self._q.put(ln)
        self._q.put(None)  # EOF: journalctl exited (the partial tail, if any, is dropped and re-read)

    def poll_runs(self, limit: int = 10_000) -> list[Run]:
        return runs_of(self.poll(limit))

    def poll(self, limit: int = 10_000) -> list[Line]:
        out: list[Line] = []
        while len(out) < limit:
            try:
                raw = self._q.get_nowait()
            except queue.Empty:
                break
            if raw is None:
                self._exited()
                break
            cur = cursor_of(raw)
            if cur is not None:
                self.cursor = cur
            self.lines += 1
            out.append(Line(raw, "journald", self.lines))
        if self._proc is None and time.monotonic() >= self._next_start:
            self._start()
        return out

    def _exited(self) -> None:
        rc = self._proc.wait() if self._proc is not None else None
        if not self.follow:
            self.done = True
            self._proc = None
            self._next_start = float("inf")
            return
        self._restarts += 1
        delay = min(30.0, 0.5 * 2 ** min(self._restarts, 6))
        log.error("journald: journalctl exited (status %s); restarting it in %.0f s after cursor %s",
                  rc, delay, self.cursor)
        self._proc = None
        self._next_start = time.monotonic() + delay

    def position(self) -> dict[str, Any]:
        return {"cursor": self.cursor}

    def close(self) -> None:
        p = self._proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._proc = None
