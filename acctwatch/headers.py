"""Log framings: split a raw line into (timestamp text, host, program, pid, message).

One parser per framing, chosen per line by its first character (cheap) and then by a regex anchored at
both ends. Timestamps are kept as text here and only turned into datetimes by :class:`Clock` for lines
that a pattern matched (the hot path never parses a time it does not need).

Framings:

``bsd``      RFC3164 syslog ``Nov 26 07:11:57 host prog/sub[pid]: msg`` (also zero-padded or
             unpadded day, optional ``<PRI>``, optional fractional seconds as written by Postfix's own
             ``maillog_file``, optional missing host as in Dovecot ``log_path`` files)
``rfc3339``  rsyslog's high-precision format ``2026-11-26T07:11:57.123456+01:00 host prog[pid]: msg``
             (also rsyslog templates that write ``host [prog]<TAB> level<TAB>:  msg``, and RFC5424
             ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG``, whose timestamps are RFC3339 too)
``ymd``      ``2026-11-26 07:11:57 [host] prog: msg`` (Dovecot ``log_timestamp = "%Y-%m-%d %H:%M:%S "``)
``tai64n``   daemontools/multilog ``@4000000051d8... prog: msg``
``journal``  ``journalctl -o json`` objects (``__REALTIME_TIMESTAMP``, ``SYSLOG_IDENTIFIER``, ``_PID``,
             ``MESSAGE`` as text or byte array)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}

# Program names never contain spaces, brackets or colons, except a Dovecot log_path process prefix such as
# ``auth-worker(22401)`` or 2.4's ``auth(user,ip,sasl:plain)<session>`` (kept whole; the parser splits it).
# A host never ends with a colon.
_PROG = r"(?P<prog>[^\s\[\]:()<>]+(?:\([^()]*\))?(?:<[^<>\s]*>){0,2})(?:\[(?P<pid>\d+)\])?"
_HOST = r"(?:(?P<host>[^\s]*[^\s:]) )??"

BSD_RE = re.compile(
    r"(?:<\d{1,3}>)?(?P<ts>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]?\d"
    r"(?: \d{4})? \d\d:\d\d:\d\d(?:\.\d{1,9})?) +" + _HOST + _PROG + r": ?(?P<msg>.*)\Z",
    re.DOTALL,
)
RFC3339_RE = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?) +" + _HOST + _PROG
    + r": ?(?P<msg>.*)\Z",
    re.DOTALL,
)
# rsyslog template seen in the wild: "TS host [prog]\t severity\t:  msg"
RFC3339_TEMPLATE_RE = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) "
    r"\[(?P<prog>[^\s\[\]:]+)\][\t ]+\w+[\t ]+: +(?P<msg>.*)\Z",
    re.DOTALL,
)
YMD_RE = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d{1,9})?) +" + _HOST + _PROG + r": ?(?P<msg>.*)\Z",
    re.DOTALL,
)
# docker compose logs: "service_1  | <a syslog line>"
COMPOSE_PREFIX_RE = re.compile(r"[A-Za-z0-9][\w.-]* *\| (?=\S)")
# Fast paths for the common shapes (timestamp, host, program[pid]: message); the full regexes above decide
# everything else. The timestamp text is validated later by the Clock, only for lines a pattern took.
_FAST_RFC3339 = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?) ([^\s:]+) "
    r"([^\s\[\]:()<>]+)(?:\[(\d+)\])?: (.*)\Z", re.DOTALL)
_FAST_BSD = re.compile(
    r"((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]?\d \d\d:\d\d:\d\d(?:\.\d{1,9})?) "
    r"([^\s:]+) ([^\s\[\]:()<>]+)(?:\[(\d+)\])?: (.*)\Z", re.DOTALL)
# RFC5424: "<PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID STRUCTURED-DATA MSG" (rsyslog's
# RSYSLOG_SyslogProtocol23Format, syslog-ng's syslog() destination); "-" is the nil value.
RFC5424_RE = re.compile(
    r"<\d{1,3}>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) "
    r"(?P<host>\S+) (?P<prog>[^\s\[\]]+) (?P<pid>\S+) \S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: \ufeff?(?P<msg>.*))?\Z",
    re.DOTALL)
_make = tuple.__new__
TAI64N_RE = re.compile(r"@(?P<ts>[0-9a-f]{24}) +" + _PROG + r": ?(?P<msg>.*)\Z", re.DOTALL)


class Header(NamedTuple):
    fmt: str  # bsd, rfc3339, ymd, tai64n, journal
    ts: str | int  # raw timestamp text (or microseconds since the epoch for journal)
    host: str | None
    program: str
    pid: int | None
    msg: str


def split_header(line: str) -> Header | None:
    """Return the framing of *line* (without its newline), or None when no framing fits."""
    if not line:
        return None
    c = line[0]
    if c.isdigit():
        m = _FAST_RFC3339.match(line)
        if m is not None:
            ts, host, prog, pid, msg = m.groups()
            return _make(Header, ("rfc3339", ts, host, prog, int(pid) if pid else None, msg))
    elif c in "JFMASOND":
        m = _FAST_BSD.match(line)
        if m is not None:
            ts, host, prog, pid, msg = m.groups()
            return _make(Header, ("bsd", ts, host, prog, int(pid) if pid else None, msg))
    if c == "{":
        return _journal(line)
    if c == "@":
        m = TAI64N_RE.match(line)
        fmt = "tai64n"
    elif c.isdigit():
        if len(line) > 10 and line[10] == "T":
            m = RFC3339_RE.match(line)
            fmt = "rfc3339"
            if m is None:
                m = RFC3339_TEMPLATE_RE.match(line)
        else:
            m = YMD_RE.match(line)
            fmt = "ymd"
    elif c == "<" and ">1 " in line[:8]:
        m = RFC5424_RE.match(line)
        if m is None:
            return None
        ts, host, prog, pid, msg = m.group("ts", "host", "prog", "pid", "msg")
        return _make(Header, ("rfc3339", ts, None if host == "-" else host, prog,
                              int(pid) if pid.isdigit() else None, msg or ""))
    else:
        m = BSD_RE.match(line)
        fmt = "bsd"
        if m is None and " | " in line[:80]:
            p = COMPOSE_PREFIX_RE.match(line)
            if p is not None and p.end() < len(line) and line[p.end()] not in "{|":
                return split_header(line[p.end():])
    if m is None:
        return None
    g = m.groupdict()
    pid = g.get("pid")
    return Header(fmt, g["ts"], g.get("host"), g["prog"], int(pid) if pid else None, g["msg"])


def _journal(line: str) -> Header | None:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested input
        return None
    if not isinstance(obj, dict):
        return None
    msg = obj.get("MESSAGE")
    if isinstance(msg, list):  # journald encodes non-UTF-8 messages as a byte array
        try:
            msg = bytes(int(b) & 0xFF for b in msg).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return None
    if not isinstance(msg, str):
        return None
    try:
        usec = int(obj.get("__REALTIME_TIMESTAMP", ""))
    except (TypeError, ValueError):
        return None
    prog = obj.get("SYSLOG_IDENTIFIER") or obj.get("_COMM") or ""
    if not isinstance(prog, str):
        prog = ""
    pid_raw = obj.get("SYSLOG_PID") or obj.get("_PID")
    try:
        pid = int(pid_raw) if pid_raw is not None else None
    except (TypeError, ValueError):
        pid = None
    host = obj.get("_HOSTNAME")
    return Header("journal", usec, host if isinstance(host, str) else None, prog, pid,
                  msg.rstrip("\n"))


class Clock:
    """Turns header timestamps into aware UTC datetimes.

    Lines without a zone are read in *zone* (default: the machine's local zone). RFC3164 lines carry no
    year: it comes from *year*, else from *reference* (normally the file's mtime: a date later than the
    reference by more than a day belongs to the previous year), else from the current year; a step back
    from December to January inside one stream moves to the next year.
    """

    def __init__(self, zone: str | tzinfo | None = None, year: int | None = None,
                 reference: datetime | None = None) -> None:
        if zone is None or zone == "local":
            self.zone: tzinfo = _local_zone()
        elif isinstance(zone, str):
            self.zone = UTC if zone.upper() == "UTC" else ZoneInfo(zone)
        else:
            self.zone = zone
        self.year = year
        self.reference = reference
        self._last_month: int | None = None
        self._cache_key: object = None
        self._cache_fmt = ""
        self._cache_val: datetime | None = None
        self._parsers: dict[str, Callable[[Any], datetime]] = {
            "bsd": self._bsd, "rfc3339": self._rfc3339, "ymd": self._ymd, "tai64n": self._tai64n,
            "journal": self._journal}

    def parse(self, fmt: str, raw: str | int) -> datetime | None:
        if raw == self._cache_key and fmt == self._cache_fmt:
            return self._cache_val
        try:
            val = self._parsers[fmt](raw)
        except (ValueError, KeyError, IndexError, OverflowError, OSError, TypeError):
            val = None
        self._cache_key, self._cache_fmt, self._cache_val = raw, fmt, val
        return val

    def _aware(self, naive: datetime) -> datetime:
        return naive.replace(tzinfo=self.zone).astimezone(UTC)

    def _bsd(self, raw: str) -> datetime:
        parts = raw.split()
        month = MONTHS[parts[0]]
        day = int(parts[1])
        if len(parts) == 4:  # "Nov 26 2026 07:11:57"
            year = int(parts[2])
            clock = parts[3]
        else:
            year = self._year_for(month, day)
            clock = parts[2]
        hms, _, frac = clock.partition(".")
        h, mi, s = hms.split(":")
        us = int((frac + "000000")[:6]) if frac else 0
        return self._aware(datetime(year, month, day, int(h), int(mi), int(s), us))

    def _year_for(self, month: int, day: int) -> int:
        last = self._last_month
        if self.year is None:
            ref = self.reference or datetime.now(self.zone)
            if ref.tzinfo is None:
                ref = ref.replace(tzinfo=self.zone)
            ref = ref.astimezone(self.zone)
            year = ref.year
            if month == 2 and day == 29:  # the latest leap year not after the reference
                while not _leap(year):
                    year -= 1
            if datetime(year, month, day, tzinfo=self.zone) > ref + timedelta(days=1):
                year -= 1
                while month == 2 and day == 29 and not _leap(year):
                    year -= 1
            self.year = year
        elif last is not None:
            if month < last - 6:  # Dec -> Jan
                self.year += 1
            elif month > last + 6:  # a late line from last year, keep the stream's year
                self._last_month = last
                return self.year - 1
        self._last_month = month
        return self.year

    def _rfc3339(self, raw: str) -> datetime:
        dt = datetime.fromisoformat(raw)
        tz = dt.tzinfo
        if tz is None:
            return self._aware(dt)
        return dt if tz is UTC else dt.astimezone(UTC)

    def _ymd(self, raw: str) -> datetime:
        return self._aware(datetime.fromisoformat(raw.replace(",", ".")))

    def _tai64n(self, raw: str) -> datetime:
        secs = int(raw[:16], 16) - (1 << 62) - 10  # TAI is 10 s ahead of UTC (plus leap seconds)
        nanos = int(raw[16:], 16)
        return datetime.fromtimestamp(secs, UTC) + timedelta(microseconds=nanos // 1000)

    def _journal(self, raw: int) -> datetime:
        return datetime.fromtimestamp(raw / 1_000_000, UTC)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _local_zone() -> tzinfo:
    """The machine's zone with its DST rules (TZ, then /etc/localtime), else its current offset."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return UTC if name.upper() in ("UTC", "UTC0") else ZoneInfo(name)
        with open("/etc/localtime", "rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        tz = datetime.now().astimezone().tzinfo
        return tz if tz is not None else UTC
