"""Log framings (acctwatch.headers): split_header per format and Clock (years, rollover, zones)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from acctwatch.headers import Clock, split_header


@pytest.mark.parametrize(("line", "fmt", "host", "prog", "pid", "msg"), [
    ("Nov 26 07:11:57 mx postfix/smtpd[123]: connect from x", "bsd", "mx", "postfix/smtpd", 123, "connect from x"),
    ("Nov  6 07:11:57 mx postfix/smtpd[1]: m", "bsd", "mx", "postfix/smtpd", 1, "m"),
    ("Nov 06 07:11:57 mx postfix/smtpd[1]: m", "bsd", "mx", "postfix/smtpd", 1, "m"),
    ("Nov 6 07:11:57 mx postfix/smtpd[1]: m", "bsd", "mx", "postfix/smtpd", 1, "m"),
    ("<22>Nov 26 07:11:57 mx postfix/qmgr[9]: m", "bsd", "mx", "postfix/qmgr", 9, "m"),
    # Postfix maillog_file (postlogd): zero-padded day, fractional seconds, short host name
    ("Mar 09 10:11:12.345678 mx postfix/smtpd[7]: m", "bsd", "mx", "postfix/smtpd", 7, "m"),
    # Dovecot log_path: no host, level word
    ("Nov 26 07:46:00 imap-login: Info: Login: x", "bsd", None, "imap-login", None, "Info: Login: x"),
    ("Jan 29 13:54:06 auth-worker(22401): Info: sql(a,1.2.3.4): unknown user", "bsd", None,
     "auth-worker(22401)", None, "Info: sql(a,1.2.3.4): unknown user"),
    ("Aug 30 00:10:57 auth(i@example.com,192.0.2.110,sasl:login)<CvN+E9>: Info: sql: Password mismatch", "bsd", None,
     "auth(i@example.com,192.0.2.110,sasl:login)<CvN+E9>", None, "Info: sql: Password mismatch"),
    ("2026-11-26T07:11:57.123456+01:00 mx postfix/smtpd[5]: m", "rfc3339", "mx", "postfix/smtpd", 5, "m"),
    ("2026-11-26T07:11:57Z mx dovecot: imap-login: m", "rfc3339", "mx", "dovecot", None, "imap-login: m"),
    ("2016-03-06T06:25:45.815923+07:00 hostname [dovecot]\t info\t:  imap-login: Login: x", "rfc3339", "hostname",
     "dovecot", None, "imap-login: Login: x"),
    ("2013-08-11 03:56:40 auth-worker(default): Info: m", "ymd", None, "auth-worker(default)", None, "Info: m"),
    ("@400000004c91b044077a9e94 imap-login: Info: m", "tai64n", None, "imap-login", None, "Info: m"),
    ("mailserver | Sep 2 09:24:06 mail dovecot: imap-login: m", "bsd", "mail", "dovecot", None, "imap-login: m"),
])
def test_split_header(line: str, fmt: str, host: str | None, prog: str, pid: int | None, msg: str) -> None:
    h = split_header(line)
    assert h is not None
    assert (h.fmt, h.host, h.program, h.pid, h.msg) == (fmt, host, prog, pid, msg)


@pytest.mark.parametrize("line", ["", "hello world", "Nov 26 mx postfix: x", "2026-11-26Tbad", "{not json",
                                  "{" * 3000, "[1,2]", '{"MESSAGE": 5, "__REALTIME_TIMESTAMP": "1"}'])
def test_split_header_rejects_garbage(line: str) -> None:
    assert split_header(line) is None


def test_journal_text_and_byte_array() -> None:
    base = {"__REALTIME_TIMESTAMP": "1795676400123456", "SYSLOG_IDENTIFIER": "postfix/smtpd", "_PID": "42",
            "_HOSTNAME": "mx"}
    h = split_header(json.dumps({**base, "MESSAGE": "connect from x"}))
    assert h is not None and (h.fmt, h.program, h.pid, h.host, h.msg) == ("journal", "postfix/smtpd", 42, "mx",
                                                                           "connect from x")
    raw = "Login: user=<b\xe9b>".encode("latin-1")  # not UTF-8: journald writes a byte array
    h = split_header(json.dumps({**base, "MESSAGE": list(raw)}))
    assert h is not None and h.msg == "Login: user=<b\ufffdb>"
    assert Clock(zone="UTC").parse(h.fmt, h.ts) == datetime(2026, 11, 26, 7, 0, 0, 123456, tzinfo=UTC)


def test_bsd_year_explicit_and_fraction() -> None:
    c = Clock(zone="UTC", year=2025)
    assert c.parse("bsd", "Mar  9 10:11:12.5") == datetime(2025, 3, 9, 10, 11, 12, 500000, tzinfo=UTC)
    assert c.parse("bsd", "Nov 26 2019 07:11:57") == datetime(2019, 11, 26, 7, 11, 57, tzinfo=UTC)


def test_bsd_year_from_reference_mtime() -> None:
    ref = datetime(2027, 1, 2, 12, 0, tzinfo=UTC)  # file written on Jan 2, 2027
    assert Clock(zone="UTC", reference=ref).parse("bsd", "Jan  2 10:00:00") == datetime(2027, 1, 2, 10,
                                                                                       tzinfo=UTC)
    # a December line in a file last written in January is from the previous year
    assert Clock(zone="UTC", reference=ref).parse("bsd", "Dec 30 10:00:00") == datetime(2026, 12, 30, 10,
                                                                                       tzinfo=UTC)
    # a naive reference is read in the clock's zone instead of raising
    assert Clock(zone="UTC", reference=datetime(2027, 1, 2)).parse("bsd", "Jan  1 00:00:00") is not None


def test_dec_to_jan_rollover_in_one_stream() -> None:
    c = Clock(zone="UTC", reference=datetime(2027, 1, 1, 1, 0, tzinfo=UTC))
    first = c.parse("bsd", "Dec 31 23:59:59")
    second = c.parse("bsd", "Jan  1 00:00:01")
    assert first == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert second == datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_feb_29_takes_a_leap_year() -> None:
    ts = Clock(zone="UTC", reference=datetime(2026, 3, 1, tzinfo=UTC)).parse("bsd", "Feb 29 12:00:00")
    assert ts == datetime(2024, 2, 29, 12, tzinfo=UTC)


def test_zone_with_dst() -> None:
    c = Clock(zone="Europe/Berlin", year=2026)
    assert c.parse("bsd", "Jul  1 12:00:00") == datetime(2026, 7, 1, 10, tzinfo=UTC)  # CEST, +02:00
    c = Clock(zone="Europe/Berlin", year=2026)
    assert c.parse("bsd", "Jan 15 12:00:00") == datetime(2026, 1, 15, 11, tzinfo=UTC)  # CET, +01:00
    assert c.parse("ymd", "2026-03-29 03:30:00") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # after the switch


def test_rfc3339_zones_and_precision() -> None:
    c = Clock(zone="Europe/Berlin")
    assert c.parse("rfc3339", "2026-11-26T07:11:57.123456+01:00") == datetime(2026, 11, 26, 6, 11, 57, 123456,
                                                                              tzinfo=UTC)
    assert c.parse("rfc3339", "2026-11-26T07:11:57.123456789Z") == datetime(2026, 11, 26, 7, 11, 57, 123456,
                                                                            tzinfo=UTC)
    assert c.parse("rfc3339", "2026-11-26T07:11:57+0100") == datetime(2026, 11, 26, 6, 11, 57, tzinfo=UTC)
    # no zone in the text: read in the configured zone
    assert c.parse("rfc3339", "2026-07-01T12:00:00") == datetime(2026, 7, 1, 10, tzinfo=UTC)


def test_ymd_comma_fraction_and_tai64n() -> None:
    c = Clock(zone="UTC")
    assert c.parse("ymd", "2026-01-02 03:04:05,250") == datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    # 2^62 + 10 + unix seconds (daemontools convention)
    label = f"{(1 << 62) + 10 + 1_000_000_000:016x}{500_000_000:08x}"
    assert c.parse("tai64n", label) == datetime.fromtimestamp(1_000_000_000.5, UTC)


@pytest.mark.parametrize(("fmt", "raw"), [("bsd", "Foo 1 00:00:00"), ("bsd", "Feb 30 00:00:00"),
                                          ("rfc3339", "2026-13-01T00:00:00Z"), ("tai64n", "f" * 24),
                                          ("journal", 10**30), ("ymd", "2026-02-30 00:00:00")])
def test_bad_times_are_none(fmt: str, raw: str | int) -> None:
    assert Clock(zone="UTC", year=2026).parse(fmt, raw) is None
