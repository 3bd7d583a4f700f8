"""Logging for the command line and the daemon: what reaches stderr, and how the journal sees it.

* When stderr is the journal (systemd sets ``JOURNAL_STREAM`` to its device:inode), every line starts with
  its syslog priority (``<4>``: warning, ``<3>``: error ...), so that ``journalctl -u acctwatch -p
  warning`` shows incidents and actions, ``-p err`` the failures.
* apprise's own chatter is kept at debug (it logs every delivery at info).
* A traceback is printed only with ``-v`` (bug reports); without it, a failure is the one line that says
  what failed and why.
"""

from __future__ import annotations

import logging
import os
import sys

#: syslog priorities of Python's levels (RFC 5424: 3 err, 4 warning, 5 notice, 6 info, 7 debug)
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def stderr_is_journal() -> bool:
    """True when stderr is connected to the journal (systemd's ``JOURNAL_STREAM=dev:inode``)."""
    js = os.environ.get("JOURNAL_STREAM")
    if not js:
        return False
    try:
        dev, ino = (int(x) for x in js.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class Formatter(logging.Formatter):
    def __init__(self, journal: bool, tracebacks: bool) -> None:
        super().__init__("acctwatch: %(levelname)s: %(message)s")
        self.journal = journal
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if not self.tracebacks and record.exc_info:
            exc = record.exc_info[1]
            record = logging.makeLogRecord(record.__dict__)
            record.exc_info = None
            record.exc_text = None
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {first}"
            record.args = None
        text = super().format(record)
        if self.journal:
            prio = next((p for lvl, p in PRIORITIES if record.levelno >= lvl), 7)
            # (a traceback's lines keep the priority of their message)
            text = "\n".join(f"<{prio}>{line}" for line in text.splitlines())
        return text


def setup(verbose: int = 0) -> None:
    """Configure the root logger once: WARNING (-v: INFO and tracebacks, -vv: DEBUG, apprise included)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    root = logging.getLogger()
    fmt = Formatter(journal=stderr_is_journal(), tracebacks=verbose >= 1)
    ours = [h for h in root.handlers if isinstance(h.formatter, Formatter)]
    if ours:  # called again in the same process (tests): keep the stream, as logging.basicConfig would
        for h in ours:
            h.setFormatter(fmt)
    elif not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(fmt)
        root.addHandler(handler)
    # (else somebody, e.g. pytest's log capture, installed handlers first: leave them, as basicConfig does)
    root.setLevel(level)
    logging.getLogger("apprise").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)
