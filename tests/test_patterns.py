"""Pattern data: every embedded example passes, the loader rejects bad files, one unit test per event kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from acctwatch.events import Event
from acctwatch.headers import Clock
from acctwatch.parsing import LineParser, PatternError, PatternSet, classify_program, run_examples

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "parse"


@pytest.fixture(scope="module")
def ps() -> PatternSet:
    return PatternSet.load()


def one(ps: PatternSet, line: str) -> Event | None:
    return LineParser(ps, Clock(zone="UTC", year=2026)).parse(line, 1)


def test_all_embedded_examples_pass(ps: PatternSet) -> None:
    results = run_examples(ps)
    failed = [f"{r.pattern}: {r.problem}: {r.line}" for r in results if not r.ok]
    assert not failed, "\n".join(failed)
    assert len(results) >= 100
    # every pattern carries at least one line it must take
    for p in ps.patterns:
        assert any(ex.expect is not None for ex in p.examples), p.name


def test_builtin_regexes_compile_lazily_with_the_same_groups() -> None:
    """acctwatch's own regexes are compiled at their first use (start-up); their group names, read from the
    text, are the compiled regex's, and every one compiles (user patterns are compiled, and checked, at
    load: see test_user_pattern_overrides_builtin_by_name)."""
    import re

    from acctwatch.parsing import _LazyRegex

    ps = PatternSet.load()
    lazy = [p for p in ps.patterns if isinstance(p.regex, _LazyRegex)]
    assert len(lazy) == len(ps.patterns) > 20
    for p in lazy:
        stub = p.regex
        rx = re.compile(stub.pattern)
        assert list(stub.groupindex) == list(rx.groupindex), p.name
        assert stub.match("no such line") is None
        assert p.regex is not stub and p.regex.pattern == stub.pattern  # compiled in its place


def test_prefilter_literals_stay_few(ps: PatternSet) -> None:
    assert len(ps.literals) <= 14, ps.literals  # searched in every line: keep them few
    for p in ps.patterns:
        assert p.prefilter in p.regex.pattern.replace("\\", "")


def test_a_broken_example_is_reported(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text('''family = "postfix"
[[pattern]]
name = "t.bad"
programs = ["smtpd"]
prefilter = "zzz"
event = "reject"
regex = '^zzz (?P<ip>\\S+)$'
[[pattern.example]]
line = "Nov 26 07:11:57 mx postfix/smtpd[1]: zzz 192.0.2.1"
expect = { ip = "192.0.2.99" }
''')
    results = [r for r in run_examples(PatternSet.load([tmp_path])) if r.pattern == "t.bad"]
    assert len(results) == 1 and not results[0].ok and "192.0.2.99" in results[0].problem


@pytest.mark.parametrize(("body", "needle"), [
    ('family = "exim"', "family"),
    ('family = "postfix"\n[[pattern]]\nname = "a"\nprograms = ["smtpd"]\nprefilter = "x"\nevent = "login"\n'
     "regex = 'x'\n", "anchored"),
    ('family = "postfix"\n[[pattern]]\nname = "a"\nprograms = ["smtpd"]\nprefilter = "x"\nevent = "login"\n'
     "regex = '^x(?P<nope>y)$'\n", "nope"),
    ('family = "postfix"\n[[pattern]]\nname = "a"\nprograms = ["smtpd"]\nprefilter = "q"\nevent = "login"\n'
     "regex = '^x$'\n", "prefilter"),
    ('family = "postfix"\n[[pattern]]\nname = "a"\nprograms = ["smtpd"]\nprefilter = "x"\nevent = "login"\n'
     "regex = '^x$'\n", "example"),
    ('family = "postfix"\n[[pattern]]\nname = "a"\nprograms = ["smtpd"]\nprefilter = "x"\nevent = "nope"\n'
     "regex = '^x$'\n", "unknown event"),
    ("not toml [", "TOML"),
])
def test_loader_errors(tmp_path: Path, body: str, needle: str) -> None:
    (tmp_path / "bad.toml").write_text(body)
    with pytest.raises(PatternError, match=needle):
        PatternSet.load([tmp_path])


def test_user_pattern_overrides_builtin_by_name(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('''family = "postfix"
[[pattern]]
name = "postfix.qmgr.queue"
programs = ["qmgr"]
prefilter = "nrcpt="
event = "ignore"
regex = '^.*nrcpt=.*$'
[[pattern.example]]
line = "Nov 26 07:11:58 mx postfix/qmgr[99]: 4ABCD12345: from=<a@b>, size=1, nrcpt=1 (queue active)"
''')
    ps = PatternSet.load([tmp_path])
    assert [p.origin for p in ps.patterns if p.name == "postfix.qmgr.queue"] == [str(tmp_path / "mine.toml")]
    import re  # a user's regex is compiled (and checked) at load, not at its first use as acctwatch's own

    assert isinstance(next(p for p in ps.patterns if p.name == "postfix.qmgr.queue").regex, re.Pattern)
    line = "Nov 26 07:11:58 mx postfix/qmgr[99]: 4ABCD12345: from=<a@b>, size=1, nrcpt=1 (queue active)"
    assert one(ps, line) is None
    assert one(PatternSet.load(), line) is not None


def test_extra_pattern_dir_adds_patterns() -> None:
    ps = PatternSet.load([FIXTURES / "extra"])
    ev = one(ps, "Nov 26 07:12:03 mx dovecot: imap-login: Frobnicated authentication: user=<x>, rip=203.0.113.10")
    assert ev is not None and ev.kind == "auth_failure" and ev.reason == "frobnicated"
    assert all(r.ok for r in run_examples(ps))


# ---- one unit test per event kind -------------------------------------------------------------------

def test_login(ps: PatternSet) -> None:
    ev = one(ps, "2026-11-26T08:00:00.5+01:00 mx dovecot: pop3-login: Login: user=<Bob@Example.org>, method=PLAIN, "
                 "rip=::ffff:198.51.100.2, lip=192.0.2.1, mpid=1, TLS, session=<s>")
    assert ev is not None and ev.kind == "login"
    assert (ev.service, ev.account, ev.ip, ev.local_ip, ev.method, ev.session) == (
        "pop3", "Bob@Example.org", "198.51.100.2", "192.0.2.1", "PLAIN", "s")
    assert ev.to_dict()["ts"] == "2026-11-26T07:00:00.500000Z"


def test_auth_failure_frontend_and_backend(ps: PatternSet) -> None:
    front = one(ps, "Nov 26 07:11:57 mx dovecot: imap-login: Disconnected (auth failed, 3 attempts in 12 secs): "
                    "user=<bob>, method=PLAIN, rip=198.51.100.2, lip=192.0.2.1, TLS, session=<s9>")
    back = one(ps, "Nov 26 07:11:55 mx dovecot: auth: sql(bob,198.51.100.2,<s9>): Password mismatch")
    assert front is not None and back is not None
    assert (front.kind, front.layer, front.attempts, front.session) == ("auth_failure", "frontend", 3, "s9")
    assert (back.kind, back.layer, back.attempts, back.session, back.reason) == (
        "auth_failure", "backend", None, "s9", "password mismatch")
    assert front.account == back.account == "bob" and front.ip == back.ip


def test_postfix_disconnect_auth_is_not_counted(ps: PatternSet) -> None:
    line = "Nov 26 07:12:01 mx postfix/smtpd[1]: disconnect from unknown[192.0.2.150] ehlo=1 auth=0/1 commands=1/2"
    # the hot path yields nothing for it ...
    fast = LineParser(ps, Clock(zone="UTC", year=2026))
    assert fast.parse(line, 1) is None and not fast.stats.events and fast.stats.relevant_unmatched == 0
    # ... and explain knows it as deliberately ignored, not as relevant-unmatched
    parser = LineParser(ps, Clock(zone="UTC", year=2026), track_unmatched=True)
    assert parser.parse(line, 1) is None
    assert parser.stats.relevant_unmatched == 0
    assert parser.stats.ignored == 1 and parser.stats.hits["postfix.smtpd.disconnect_auth"] == 1


def test_message(ps: PatternSet) -> None:
    ev = one(ps, "Nov 26 07:11:57 mx postfix-out/smtps/smtpd[1]: 4Xyz1N2abcD3efG: client=h.example.net"
                 "[2001:DB8::7]:4242, sasl_method=LOGIN, sasl_username=carol")
    assert ev is not None and ev.kind == "message"
    assert (ev.queue_id, ev.account, ev.ip, ev.service) == ("4Xyz1N2abcD3efG", "carol", "2001:db8::7", "submission")


def test_queue(ps: PatternSet) -> None:
    ev = one(ps, "Nov 26 07:11:58 mx postfix/qmgr[99]: 4ABCD12345: from=<a@example.org>, size=77, nrcpt=3 "
                 "(queue active)")
    assert ev is not None and (ev.kind, ev.queue_id, ev.sender, ev.size, ev.nrcpt) == (
        "queue", "4ABCD12345", "a@example.org", 77, 3)


@pytest.mark.parametrize(("status", "want"), [("sent", "sent"), ("deferred", "deferred"), ("bounced", "bounced"),
                                              ("expired", "expired"), ("SOFTBOUNCE", "deferred")])
def test_delivery_status_normalised(ps: PatternSet, status: str, want: str) -> None:
    ev = one(ps, f"Nov 26 07:12:00 mx postfix/smtp[1]: 4ABCD12345: to=<b@example.net>, relay=none, delay=1, "
                 f"delays=1/0/0/0, dsn=4.4.1, status={status} (x)")
    assert ev is not None and ev.kind == "delivery" and ev.status == want and ev.recipient == "b@example.net"


def test_reject(ps: PatternSet) -> None:
    ev = one(ps, "Nov 26 07:12:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.246]: 550 5.7.25 "
                 "Client host rejected: cannot find your hostname, [192.0.2.246]; from=<s@example.com> "
                 "to=<r@example.org> proto=ESMTP helo=<[192.0.2.246]>")
    assert ev is not None and ev.kind == "reject"
    assert (ev.ip, ev.stage, ev.code, ev.sender, ev.recipient, ev.helo, ev.queue_id) == (
        "192.0.2.246", "RCPT", "550", "s@example.com", "r@example.org", "[192.0.2.246]", "NOQUEUE")


def test_classify_program_forms() -> None:
    assert classify_program("postfix-xyz/submission/smtpd", "m") == ("postfix", "smtpd", "submission", "m")
    assert classify_program("dovecot", "dovecot: auth(default): Info: x") == ("dovecot", "auth", None, "x")
    assert classify_program("auth-worker(5)", "Info: conn unix:auth-worker (pid=1,uid=2): auth-worker<3>: y") == (
        "dovecot", "auth-worker", None, "y")
    assert classify_program("dovecot", "auth(u,1.2.3.4,sasl:plain)<s>: Info: sql: z") == (
        "dovecot", "auth", None, "auth(u,1.2.3.4,sasl:plain)<s>: sql: z")
    assert classify_program("sshd", "x") is None


def test_no_shipped_pattern_is_super_linear_in_an_attacker_field(ps: PatternSet) -> None:
    from acctwatch.parsing import cost_problems

    assert [(r.pattern, r.line, r.problem) for r in cost_problems(ps)] == []


def test_the_cost_check_finds_a_quadratic_pattern(tmp_path: Path) -> None:
    """The check itself: a pattern with the classic mistake (a lazy field before an optional tail) fails."""
    from acctwatch.parsing import cost_problems

    regex = (r"^NOQUEUE: reject: RCPT from (?P<_n>[^\[]+)\[(?P<ip>[0-9.]+)\]: (?P<reason>.*?)"
             r"(?:; from=<(?P<sender>.*?)> proto=\S+ helo=<(?P<helo>[^<>]*)>)?$")
    line = ("Nov 26 07:12:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 no; from=<a@b> "
            "proto=ESMTP helo=<h>")
    (tmp_path / "slow.toml").write_text(f"""family = "postfix"

[[pattern]]
name = "test.slow"
programs = ["smtpd"]
prefilter = "reject"
event = "reject"
regex = '{regex}'

[[pattern.example]]
line = "{line}"
expect = {{ kind = "reject", ip = "192.0.2.1", sender = "a@b", helo = "h" }}
""")
    slow = PatternSet.load([str(tmp_path)])
    assert [r.pattern for r in cost_problems(slow)] == ["test.slow"]


def test_a_hostile_reject_line_costs_linear_time(ps: PatternSet) -> None:
    """Issue: a reject with a 2 KB HELO and a 2 KB MAIL FROM took 0.4 s, 8 KB lines 19 s."""
    from acctwatch.headers import Clock
    from acctwatch.parsing import LineParser

    def line(n: int) -> str:
        frm = "; from=<" * (n // 8)
        return (f"Nov 26 07:12:00 mx postfix/smtpd[100]: NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 "
                f"<x@y>: Relay access denied; from=<{frm}> to=<{frm}> proto=ESMTP helo=<{'a>' * (n // 2)}")

    parser = LineParser(ps, Clock(zone="UTC", year=2026))
    import time

    t0 = time.perf_counter()
    for n in (2000, 4000, 7000):
        parser.parse(line(n), 1)
    assert time.perf_counter() - t0 < 1.0  # was ~20 s for the longest alone
