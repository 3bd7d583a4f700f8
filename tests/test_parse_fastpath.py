"""The parser's demand-driven fast paths give the same events as the full parser, only fewer of them."""

from __future__ import annotations

from acctwatch.headers import Clock, split_header
from acctwatch.parsing import LineParser, PatternSet

PS = PatternSet.load()
LINES = [
    "Nov 26 07:11:57 mx postfix/submission/smtpd[1]: 4ABCD12345: client=h[198.51.100.7], sasl_method=PLAIN, "
    "sasl_username=alice@example.org",
    "Nov 26 07:11:58 mx postfix/qmgr[2]: 4ABCD12345: from=<alice@example.org>, size=900, nrcpt=2 (queue active)",
    "Nov 26 07:11:58 mx postfix/qmgr[2]: 4FFFF00000: from=<spam@example.net>, size=900, nrcpt=1 (queue active)",
    "Nov 26 07:11:59 mx postfix/smtp[3]: 4ABCD12345: to=<x@example.net>, relay=r[192.0.2.9]:25, delay=1, "
    "delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
    "Nov 26 07:11:59 mx postfix/lmtp[3]: 4FFFF00000: to=<u@example.org>, relay=l[private/dovecot-lmtp], delay=1, "
    "delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
    "Nov 26 07:12:00 mx postfix/smtpd[4]: NOQUEUE: reject: RCPT from u[203.0.113.4]: 554 5.7.1 <x@example.org>: "
    "Relay access denied; from=<a@b.example> to=<x@example.org> proto=ESMTP helo=<u>",
    "Nov 26 07:12:01 mx dovecot: imap-login: Login: user=<bob@example.org>, method=PLAIN, rip=203.0.113.9, "
    "lip=192.0.2.1, mpid=4242, TLS, session=<abc>",
]


def kinds_of(parser: LineParser) -> list[str]:
    return [ev.kind for n, line in enumerate(LINES, 1) if (ev := parser.parse(line, n)) is not None]


def test_full_parser_sees_everything() -> None:
    assert kinds_of(LineParser(PS, Clock(zone="UTC", year=2026))) == [
        "message", "queue", "queue", "delivery", "delivery", "reject", "login"]


def test_queue_filter_skips_mail_nobody_authenticated() -> None:
    wanted = {"4ABCD12345"}
    p = LineParser(PS, Clock(zone="UTC", year=2026), queue_filter=wanted.__contains__)
    assert kinds_of(p) == ["message", "queue", "delivery", "reject", "login"]
    assert p.stats.unwanted_queue == 2


def test_kinds_limit_parsing_to_what_detectors_use() -> None:
    p = LineParser(PS, Clock(zone="UTC", year=2026), kinds={"login", "message"})
    assert kinds_of(p) == ["message", "login"]
    assert p.stats.lines == len(LINES) and not p.stats.internal_errors
    # explain mode ignores the restriction: it must show everything
    p = LineParser(PS, Clock(zone="UTC", year=2026), kinds={"login"}, track_unmatched=True)
    assert len(kinds_of(p)) == 7


def test_fast_header_path_agrees_with_the_full_regexes() -> None:
    from acctwatch import headers

    for line in [*LINES, "2026-11-26T07:11:57.123+01:00 mx dovecot[12]: imap-login: Login: user=<a>, method=X, "
                 "rip=192.0.2.1, lip=192.0.2.2"]:
        fast = split_header(line)
        m = (headers.BSD_RE if line[0].isalpha() else headers.RFC3339_RE).match(line)
        assert fast is not None and m is not None
        assert (fast.ts, fast.host, fast.program, fast.pid, fast.msg) == (
            m["ts"], m["host"], m["prog"], int(m["pid"]) if m["pid"] else None, m["msg"])
    # host-less Dovecot log_path lines take the full path and keep their program
    h = split_header("Nov 26 07:46:00 imap-login: Info: Login: user=<a>, method=PLAIN, rip=192.0.2.1, lip=::1")
    assert h is not None and h.host is None and h.program == "imap-login"


def test_rfc5424_framing() -> None:
    """rsyslog's RSYSLOG_SyslogProtocol23Format / syslog-ng's syslog(): PRI, version 1, nil values, SD, BOM."""
    p = LineParser(PS, Clock(zone="UTC", year=2026))
    ev = p.parse('<22>1 2026-11-26T07:11:57.123456+01:00 mx postfix/submission/smtpd 4242 - - 4ABCD12345: '
                 'client=h[198.51.100.7], sasl_method=PLAIN, sasl_username=alice@example.org', 1)
    assert ev is not None and ev.kind == "message" and ev.account == "alice@example.org"
    assert ev.service == "submission" and ev.pid == 4242 and ev.ts.isoformat() == "2026-11-26T06:11:57.123456+00:00"
    ev = p.parse('<30>1 2026-11-26T07:11:57Z mx dovecot - - [meta sequenceId="1" x="a\\]b"] \ufeffimap-login: '
                 'Login: user=<bob@example.org>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2', 2)
    assert ev is not None and ev.kind == "login" and (ev.account, ev.ip) == ("bob@example.org", "192.0.2.1")
    assert split_header("<30>1 - mx dovecot - - - no timestamp") is None  # nil time: no event


def test_iter_events_equals_line_by_line_parsing() -> None:
    """The replay loop (iter_events, with its queue-id pre-gate) and parse_bytes agree, stats included."""
    raws = [line.encode() for line in LINES] + [b"", b"# comment", b"garbage \xff\xfe", b"x" * 20000]
    wanted = {"4ABCD12345"}
    a = LineParser(PS, Clock(zone="UTC", year=2026), queue_filter=wanted.__contains__, kinds={"message", "queue",
                                                                                              "delivery", "login"})
    b = LineParser(PS, Clock(zone="UTC", year=2026), queue_filter=wanted.__contains__, kinds={"message", "queue",
                                                                                              "delivery", "login"})
    got = [e.to_dict() for e in a.iter_events(raws)]
    want = [e.to_dict() for n, r in enumerate(raws, 1) if (e := b.parse_bytes(r, n)) is not None]
    assert got == want and [e["kind"] for e in got] == ["message", "queue", "delivery", "login"]
    sa, sb = a.stats.to_dict(), b.stats.to_dict()
    assert sa == sb, (sa, sb)
    assert sa["unwanted_queue"] == 2 and sa["invalid_utf8"] == 1 and sa["too_long"] == 1 and sa["lines"] == 11


def test_whole_match_fast_path_builds_what_the_field_by_field_path_builds() -> None:
    """A pattern whose groups are all plain fields takes its match's groupdict() as the fields; the events
    must be exactly what the group-by-group path gives: optional groups that took no text are the default,
    over-long fields are cut, a required field with no text makes the line a counted bad field."""
    import re

    from acctwatch.parsing import MAX_FIELD, Example, Pattern

    long_user = "u" * (MAX_FIELD + 40) + "@example.org"
    lines = [*LINES,
             "Nov 26 07:12:02 mx dovecot: imap-login: Login: user=<carol@example.org>, method=PLAIN, "
             "rip=203.0.113.10, lip=192.0.2.1, TLS",  # no session, no mpid
             f"Nov 26 07:12:03 mx dovecot: imap-login: Login: user=<{long_user}>, method=PLAIN, rip=203.0.113.11, "
             "lip=192.0.2.1, TLS, session=<x>"]
    fast = LineParser(PS, Clock(zone="UTC", year=2026))
    slow = LineParser(PatternSet([_general(p) for p in PS.patterns]), Clock(zone="UTC", year=2026))
    assert sum(p.whole for p in PS.patterns) > 10 and not any(p.whole for p in slow.patterns.patterns)
    got = [fast.parse(line, n) for n, line in enumerate(lines, 1)]
    assert got == [slow.parse(line, n) for n, line in enumerate(lines, 1)]
    assert got[-2] is not None and got[-2].session is None and got[-1].account == long_user[:MAX_FIELD]
    assert fast.stats == slow.stats

    # a field without a default whose group took no text: not an event, a counted bad field (both paths)
    rx = re.compile(r"^(?:(?P<queue_id>[0-9A-F]{10})|none): from=<(?P<sender>[^>]*)>, size=(?P<size>\d+)$")
    pat = Pattern("t.queue", "postfix", ("qmgr",), "from=<", rx, "queue", {}, [Example("x", None)], "test")
    assert pat.whole and pat.required == ("queue_id",)
    for ps in (PatternSet([pat]), PatternSet([_general(pat)])):
        p = LineParser(ps, Clock(zone="UTC", year=2026))
        ev = p.parse("Nov 26 07:12:04 mx postfix/qmgr[2]: 4ABCD12345: from=<a@example.org>, size=9", 1)
        assert ev is not None and (ev.queue_id, ev.sender, ev.size) == ("4ABCD12345", "a@example.org", 9)
        assert p.parse("Nov 26 07:12:05 mx postfix/qmgr[2]: none: from=<a@example.org>, size=9", 2) is None
        assert p.stats.bad_field == 1


def _general(p: object) -> object:
    import copy

    q = copy.copy(p)
    q.whole = False  # type: ignore[attr-defined]
    return q


def test_queue_literals_first_and_the_queue_id_check_only_where_needed() -> None:
    """Queue/delivery literals are looked for first; lines that stopped at another literal skip the queue-id
    check. The events and every count are what checking every line gives."""
    wanted = {"4ABCD12345"}
    lines = [*LINES,
             # a delivery line that also holds another literal ("auth" in the relay name)
             "Nov 26 07:13:00 mx postfix/smtp[3]: 4FFFF00001: to=<x@example.net>, relay=auth.example.net[192.0.2.9], "
             "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
             "Nov 26 07:13:01 mx postfix/smtp[3]: 4ABCD12345: to=<y@example.net>, relay=auth.example.net[192.0.2.9], "
             "delay=1, delays=0/0/0/1, dsn=5.0.0, status=bounced (550 no)",
             "Nov 26 07:13:02 mx dovecot: auth: passwd-file(x@example.org,203.0.113.5): unknown user",
             "Nov 26 07:13:03 mx postfix/qmgr[2]: 4ABCD12345: removed",
             "Nov 26 07:13:03 mx postfix/qmgr[2]: 4FFFF00001: removed",
             '{"MESSAGE":[1,2],"SYSLOG_IDENTIFIER":"postfix/smtp"}',
             "# status= nrcpt= a comment", ""]
    raws = [line.encode() for line in lines]

    framed: list[str] = []

    def parse(check_all: bool) -> tuple[list[object], object]:
        p = LineParser(PS, Clock(zone="UTC", year=2026), queue_filter=wanted.__contains__,
                       kinds={"login", "message", "queue", "delivery", "auth_failure", "removed"})
        if check_all:
            p._queue_lits = None
        inner = p._parse_framed
        p._parse_framed = lambda line, n: framed.append(line) or inner(line, n)  # type: ignore[method-assign]
        return list(p.iter_events(raws)), p.stats

    fast = LineParser(PS, Clock(zone="UTC", year=2026), kinds={"login", "message", "queue", "delivery", "removed"})
    queue_lits = {"status=", "nrcpt=", ": removed"}
    assert set(fast._literals[:3]) == queue_lits and fast._queue_lits == queue_lits
    got, stats = parse(False)
    assert not any("4FFFF" in line for line in framed)  # (mail nobody authenticated: skipped before framing)
    assert (got, stats) == parse(True)
    assert [ev.kind for ev in got] == ["message", "queue", "delivery", "login", "delivery", "auth_failure",
                                       "removed"]
    assert stats.unwanted_queue == 4 and stats.comments == 1 and stats.blank == 1
