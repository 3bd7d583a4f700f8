"""The decision log: one stable line per decision and attacking IP, for fail2ban (or any log-based tool).

An engine hook (:class:`DecisionLog`, called as ``hook(incident, is_new)``) writes, for every incident and
every IP in it, one line to its own file and/or to syslog. The format is a contract (documented in
``contrib/fail2ban/README.md`` and matched by ``contrib/fail2ban/filter.d/acctwatch.conf``)::

    2026-11-26T07:11:57+00:00 acctwatch[4711]: decision incident=3f2a9c0d1e2b3a4c5d6e detector=geo_countries \
        action=lock mode=enforce first_seen=2026-11-26T07:11:40Z ip=192.0.2.7 account="user@example.org"

(one line; broken here for width)

* the leading time is when acctwatch made the decision (wall clock, UTC), so fail2ban, which ignores
  lines older than its ``findtime``, bans even when acctwatch catches up on a backlog; ``first_seen`` is
  the log time of the incident's oldest evidence;
* ``action`` is the decision's level (``notify``, ``hold``, ``lock``; ``watch`` only when asked for), and
  ``mode`` the mode it was made in: ``enforce``, ``dry-run`` (lines are written in dry-run too, so that a
  jail can be tried with ``fail2ban-regex``; the shipped filter bans only ``mode=enforce action=lock`` by
  default) or ``replay`` (``acctwatch replay --decision-log``);
* ``ip`` is a normalised IPv4/IPv6 address (never a host name);
* ``account`` comes last and is the only field with text from the logs (attacker-controlled: a username
  tried at a login prompt). It is a JSON string (in double quotes; ``"``, ``\\``, control and non-ASCII
  characters escaped, so no space-free token, quote or line break can escape it), or ``-`` for incidents
  about an IP rather than an account. Fields before it never contain spaces or quotes.

Through syslog the message is the same without the leading time (the syslog daemon adds its own), with
the ident ``acctwatch`` and the PID.

A line is written once per (incident id, IP, level): when an incident grows (new IPs join it) only the new
IPs are written, when its level rises (notify -> lock) its IPs are written again with the new level, and a
small state file (``state``, default ``<state_dir>/decisionlog.state``) keeps that true
across restarts and log rotations. Configuration (``[decision_log]``)::

    path = "/var/log/acctwatch/decisions.log"   # a file (reopened after logrotate moves it)
    syslog = false                              # also/instead send to syslog
    syslog_address = "/dev/log"                 # unix socket, or "host:port" (UDP)
    syslog_facility = "auth"
    actions = ["notify", "hold", "lock"]        # which policy decisions to write
    state = "/var/lib/acctwatch/decisionlog.state"   # "" = remember in memory only
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import socket
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ..config import POLICIES, Config, ConfigError
from ..engine import Incident
from ..ipaddr import ip_text

log = logging.getLogger(__name__)

IDENT = "acctwatch"
KNOWN_KEYS = frozenset({"path", "syslog", "syslog_address", "syslog_facility", "actions", "state", "state_max"})
#: How many (incident, ip) keys the state file remembers (oldest forgotten first).
STATE_MAX = 20_000
ALERTING = tuple(p for p in POLICIES if p != "watch")  # the default [decision_log] actions


def quote_account(account: str | None) -> str:
    """``-`` for no account, else a JSON string: printable ASCII only, no unescaped quote or newline."""
    if account is None:
        return "-"
    return json.dumps(account, ensure_ascii=True)


def _iso_z(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_message(inc: Incident, ip: str, mode: str = "enforce") -> str:
    """The line without the leading time and ``acctwatch[PID]:`` (what syslog gets as the message)."""
    return (f"decision incident={inc.id} detector={inc.detector} action={inc.action} mode={mode} "
            f"first_seen={_iso_z(inc.first_seen)} ip={ip} account={quote_account(inc.account)}")


def format_line(inc: Incident, ip: str, now: datetime, pid: int | None = None, mode: str = "enforce") -> str:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return f"{stamp} {IDENT}[{os.getpid() if pid is None else pid}]: {format_message(inc, ip, mode)}"


class _SeenState:
    """Which (incident id, ip) pairs were written: in memory, plus an append-only file if given."""

    def __init__(self, path: Path | None, limit: int = STATE_MAX) -> None:
        self.path = path
        self.limit = limit
        self.keys: OrderedDict[str, None] = OrderedDict()
        self._fh: IO[str] | None = None
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                for line in fh:
                    key = line.strip()
                    if key:
                        self.keys[key] = None
                        self.keys.move_to_end(key)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("decision log: cannot read state %s (%s): remembering in memory only", path, exc)
            self.path = None
            return
        while len(self.keys) > self.limit:
            self.keys.popitem(last=False)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", encoding="ascii") as fh:
                fh.writelines(k + "\n" for k in self.keys)
            os.replace(tmp, path)
            self._fh = open(path, "a", encoding="ascii")  # noqa: SIM115 - kept open for appends
        except OSError as exc:
            log.warning("decision log: cannot write state %s (%s): remembering in memory only", path, exc)
            self.path = None

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def add(self, key: str) -> None:
        self.keys[key] = None
        if len(self.keys) > self.limit:
            self.keys.popitem(last=False)
        if self._fh is not None:
            self._fh.write(key + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class _LogFile:
    """An append-only file, reopened when logrotate moved or removed it (like WatchedFileHandler)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._dev_ino: tuple[int, int] | None = None
        self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._fh = os.fdopen(fd, "a", encoding="utf-8")
        st = os.fstat(fd)
        self._dev_ino = (st.st_dev, st.st_ino)

    def write(self, line: str) -> None:
        try:
            st = os.stat(self.path)
            moved = (st.st_dev, st.st_ino) != self._dev_ino
        except FileNotFoundError:
            moved = True
        if moved:
            self.reopen()
        assert self._fh is not None
        self._fh.write(line + "\n")
        self._fh.flush()

    def reopen(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _syslog_handler(address: str, facility: str) -> logging.handlers.SysLogHandler:
    fac = logging.handlers.SysLogHandler.facility_names.get(facility)
    if fac is None:
        raise ConfigError(f"decision_log.syslog_facility: unknown facility {facility!r} "
                          f"(e.g. auth, authpriv, daemon, mail, local0..local7)")
    addr: str | tuple[str, int]
    if address.startswith("/"):
        addr = address
    else:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"decision_log.syslog_address: expected a socket path or host:port, got {address!r}")
        addr = (host.strip("[]"), int(port))
    h = logging.handlers.SysLogHandler(address=addr, facility=fac, socktype=socket.SOCK_DGRAM)
    h.ident = f"{IDENT}[{os.getpid()}]: "
    return h


class DecisionLog:
    """Engine hook writing the decision log; ``engine.hooks.append(DecisionLog.from_config(cfg))``."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, syslog: bool = False,
                 syslog_address: str = "/dev/log", syslog_facility: str = "auth",
                 actions: tuple[str, ...] = ALERTING, state: str | os.PathLike[str] | None = None,
                 state_max: int = STATE_MAX, clock: Callable[[], datetime] | None = None,
                 mode: str = "enforce") -> None:
        if path is None and not syslog:
            raise ConfigError("decision_log: give a path, or syslog = true")
        self.actions = frozenset(actions)
        self.mode = mode
        self.clock = clock or (lambda: datetime.now(UTC))
        self.file = _LogFile(Path(path)) if path is not None else None
        self.syslog: logging.handlers.SysLogHandler | None = None
        if syslog:
            self.syslog = _syslog_handler(syslog_address, syslog_facility)
        self.seen = _SeenState(Path(state) if state else None, state_max)
        self.written = 0

    @classmethod
    def from_config(cls, config: Config, *, path: str | None = None, state: str | None = None,
                    clock: Callable[[], datetime] | None = None) -> DecisionLog | None:
        """The hook described by ``[decision_log]``, or None when it configures no output.

        *path* overrides the file (``replay --decision-log``); *state* overrides the state file ("" = none).
        """
        dl = config.decision_log
        where = f"{config.path or 'config'}: [decision_log]"
        unknown = set(dl) - KNOWN_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(sorted(KNOWN_KEYS))})")
        file_path = path if path is not None else dl.get("path")
        if file_path is not None and (not isinstance(file_path, str) or not file_path):
            raise ConfigError(f"{where}: path must be a file name, got {file_path!r}")
        use_syslog = dl.get("syslog", False)
        if not isinstance(use_syslog, bool):
            raise ConfigError(f"{where}: syslog must be true or false, got {use_syslog!r}")
        if path is not None:
            use_syslog = False  # an explicit file (a replay) never goes to syslog
        if file_path is None and not use_syslog:
            return None
        actions = dl.get("actions", list(ALERTING))
        if isinstance(actions, str):
            actions = [actions]
        if not isinstance(actions, list) or not all(a in POLICIES for a in actions):
            raise ConfigError(f"{where}: actions must be a list of {', '.join(POLICIES)}, got {actions!r}")
        if state is None:
            st = dl.get("state", str(config.state_dir / "decisionlog.state"))
            if not isinstance(st, str):
                raise ConfigError(f"{where}: state must be a file name or \"\", got {st!r}")
            state = st
        limit = dl.get("state_max", STATE_MAX)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigError(f"{where}: state_max must be a positive integer, got {limit!r}")
        try:
            return cls(file_path, syslog=use_syslog, syslog_address=str(dl.get("syslog_address", "/dev/log")),
                       syslog_facility=str(dl.get("syslog_facility", "auth")), actions=tuple(actions),
                       state=state or None, state_max=limit, clock=clock,
                       mode="replay" if path is not None else config.mode)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot open the decision log: {exc}") from exc

    def __call__(self, inc: Incident, is_new: bool) -> None:
        if inc.action not in self.actions:
            return
        now: datetime | None = None
        for raw in getattr(inc, "attackers", inc.ips):  # never the owner's presumed own address
            ip = ip_text(raw)
            if ip is None:
                log.warning("decision log: incident %s: %r is not an IP address, not written", inc.id, raw)
                continue
            key = f"{inc.id} {ip}" + (f" {inc.action}" if inc.action != "notify" else "")
            if key in self.seen:
                continue
            now = now or self.clock()
            if self._emit(inc, ip, now):
                self.seen.add(key)
                self.written += 1

    def _emit(self, inc: Incident, ip: str, now: datetime) -> bool:
        try:
            if self.file is not None:
                self.file.write(format_line(inc, ip, now, mode=self.mode))
            if self.syslog is not None:
                rec = logging.LogRecord(IDENT, logging.WARNING, __file__, 0, format_message(inc, ip, self.mode),
                                        None, None)
                self.syslog.emit(rec)
        except OSError as exc:  # a full disk must not stop detection; say so loudly, retry on the next update
            log.error("decision log: cannot write decision for incident %s ip %s: %s", inc.id, ip, exc)
            return False
        return True

    def reopen(self) -> None:
        """Reopen the file (SIGHUP after logrotate; moved files are also noticed on the next write)."""
        if self.file is not None:
            self.file.reopen()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.syslog is not None:
            self.syslog.close()
        self.seen.close()
