"""Generate a realistic day of Postfix + Dovecot syslog (rsyslog RFC3339 format) with injected compromises.

Normal traffic: IMAP/POP3 clients logging in from home, office and mobile addresses, authenticated
submissions (``client=... sasl_username=``, cleanup, qmgr ``nrcpt=``, smtp ``status=`` lines, ``removed``),
inbound mail delivered over LMTP, postscreen/TLS/connect/disconnect noise, rejects, and password-guessing
bots (fast ones that deserve a per-IP report and slow ones that do not).

Injected compromises (``Truth.expected``):

* ``hop@``: logs in from Berlin, 40 s later from Sydney (geo hop: ``geo_countries`` + ``impossible_travel``);
* ``vps@``: one server in Germany sends 1500+ recipients in 40 minutes, 40 % bouncing
  (``send_burst`` + ``bounce_ratio``);
* ``bf@``: 60 guesses from one address in 4 minutes, then a successful login from it (``bruteforce_success``);
  its address also gets an ``auth_failures_ip`` report, like the fast bots'.

Benign look-alikes that must stay quiet: ``traveller@`` flies Berlin -> New York in 10 h, ``stalephone@``
retries an old password every few minutes from one address for hours before the user fixes it, ``mobile@``
changes addresses all day inside one carrier.

Addresses come from an *IP plan*: ``"doc"`` uses the documentation ranges (tests map them with their own
geo databases: see :data:`DOC_NETS`), ``"public"`` uses public prefixes (for the benchmark with the embedded
country database). Same seed, same file.

``--days D`` (default 1) makes a long log instead: D consecutive days of the same population, each day
like the day of ``--lines N/D`` (fresh randomness, the clock advancing, the guessing bots on new addresses
every day): ``--lines 10000000 --days 10`` is ten days of the 1M-line day, for memory on long replays.

Usage: ``python -m benchmarks.gen_log OUT [--lines N] [--days D] [--seed S] [--plan doc|public]``
"""

from __future__ import annotations

import argparse
import bisect
import ipaddress
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

DOMAIN = "example.org"
MX = "mx"
LIP = "192.0.2.1"
DAY = datetime(2026, 11, 26, tzinfo=UTC)

#: role -> network for the "doc" plan. These sit inside the test databases of tests/fixtures/geo
#: (make_geo_fixtures.py): 192.0.2.0/25 Berlin and 192.0.2.128/25 Munich (both AS3320), 198.51.100.0/24
#: New York (AS7922), 203.0.113.0/24 Sydney (AS1221), 2001:db8::/33 Paris (AS3215).
DOC_NETS: dict[str, str] = {
    "home": "192.0.2.0/26", "office": "192.0.2.64/27", "vps": "192.0.2.96/27", "mobile": "192.0.2.128/25",
    "nyc": "198.51.100.0/25", "mta": "198.51.100.128/25", "hop": "203.0.113.0/26", "bots": "203.0.113.128/25",
    "bf": "2001:db8:1::/48",
}
#: the same roles on public prefixes (countries per the usual registries; only used for load, not asserted)
PUBLIC_NETS: dict[str, str] = {
    "home": "91.0.0.0/10", "mobile": "176.0.0.0/12", "office": "195.30.0.0/16", "nyc": "24.0.0.0/12",
    "hop": "177.0.0.0/12", "vps": "116.202.0.0/16", "bf": "113.160.0.0/12", "bots": "61.128.0.0/10",
    "mta": "209.85.128.0/17",
}


def queue_id(n: int) -> str:
    """The *n*-th Postfix queue id (same length and alphabet as Postfix's long ids): deterministic."""
    alphabet = "0123456789BCDFGHJKLMNPQRSTVWXYZ"
    v = n * 104729 + 12345
    s = ""
    while v:
        v, d = divmod(v, len(alphabet))
        s += alphabet[d]
    return "4" + s.ljust(10, "b")


@dataclass
class Truth:
    """What was injected: account -> detectors expected to report it; IPs expected in per-IP reports."""

    expected: dict[str, set[str]] = field(default_factory=dict)
    per_ip: set[str] = field(default_factory=set)
    benign: list[str] = field(default_factory=list)
    lines: int = 0


class _Gen:
    def __init__(self, seed: int, plan: str) -> None:
        self.r = random.Random(seed)
        self.plan = plan
        self.out: list[tuple[float, int, str]] = []
        self.seq = 0
        self.qn = 0
        self.pid = 1000

    # -- addresses ------------------------------------------------------------------------------------
    def ip(self, role: str, k: int) -> str:
        net = ipaddress.ip_network(DOC_NETS[role] if self.plan == "doc" else PUBLIC_NETS[role])
        n = net.num_addresses - 2 if net.version == 4 else 2**32
        return str(net.network_address + 1 + (k * 7919) % n)

    # -- primitives -----------------------------------------------------------------------------------
    def emit(self, t: float, prog: str, msg: str) -> None:
        self.seq += 1
        self.out.append((t, self.seq, f"{prog}: {msg}"))

    def newpid(self) -> int:
        self.pid = 1000 + (self.pid * 31 + 7) % 60000
        return self.pid

    def qid(self) -> str:
        self.qn += 1
        return queue_id(self.qn)

    def session(self) -> str:
        return "".join(self.r.choices(string.ascii_letters + string.digits + "+/", k=16))

    # -- Dovecot ---------------------------------------------------------------------------------------
    def imap_login(self, t: float, user: str, ip: str, svc: str = "imap") -> None:
        sess, mpid = self.session(), self.newpid()
        self.emit(t, f"dovecot[{self.pid % 900 + 100}]", f"{svc}-login: Login: user=<{user}>, method=PLAIN, "
                  f"rip={ip}, lip={LIP}, mpid={mpid}, TLS, session=<{sess}>")
        dur = self.r.uniform(5, 900)
        self.emit(t + dur, f"dovecot[{self.pid % 900 + 100}]", f"{svc}({user})<{mpid}><{sess}>: Logged out "
                  f"in={self.r.randint(50, 900)} out={self.r.randint(500, 90000)} deleted=0 expunged=0 "
                  f"trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0")

    def imap_fail(self, t: float, user: str, ip: str, attempts: int = 1, reason: str = "Password mismatch",
                  span: float = 2.0) -> None:
        sess = self.session()
        for k in range(attempts):
            self.emit(t + k * span / max(attempts, 1), "dovecot",
                      f"auth: passwd-file({user},{ip},<{sess}>): {reason}")
        self.emit(t + span + 0.5, "dovecot", f"imap-login: Disconnected (auth failed, {attempts} attempts in "
                  f"{int(span) + 1} secs): user=<{user}>, method=PLAIN, rip={ip}, lip={LIP}, TLS, "
                  f"session=<{sess}>")

    def smtp_auth_fail(self, t: float, user: str, ip: str) -> None:
        pid = self.newpid()
        self.emit(t, f"postfix/submission/smtpd[{pid}]", f"connect from unknown[{ip}]")
        self.emit(t + 1.1, "dovecot", f"auth: passwd-file({user},{ip}): unknown user")
        self.emit(t + 1.2, f"postfix/submission/smtpd[{pid}]",
                  f"warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6")
        self.emit(t + 1.3, f"postfix/submission/smtpd[{pid}]", f"lost connection after AUTH from unknown[{ip}]")
        self.emit(t + 1.4, f"postfix/submission/smtpd[{pid}]",
                  f"disconnect from unknown[{ip}] ehlo=1 auth=0/1 rset=1 commands=2/3")

    # -- Postfix ---------------------------------------------------------------------------------------
    def submit(self, t: float, user: str, ip: str, rcpts: list[str], bounce: float = 0.0) -> float:
        pid, q = self.newpid(), self.qid()
        host = f"host-{ip.replace('.', '-').replace(':', '-')}.example.net"
        sp = f"postfix/submission/smtpd[{pid}]"
        self.emit(t, sp, f"connect from {host}[{ip}]")
        self.emit(t + 0.1, sp, f"Anonymous TLS connection established from {host}[{ip}]: TLSv1.3 with cipher "
                  "TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519")
        self.emit(t + 0.3, sp, f"{q}: client={host}[{ip}], sasl_method=PLAIN, sasl_username={user}")
        self.emit(t + 0.35, f"postfix/cleanup[{pid + 1}]", f"{q}: message-id=<{q.lower()}@{DOMAIN}>")
        self.emit(t + 0.4, f"postfix/qmgr[{900}]", f"{q}: from=<{user}>, size={self.r.randint(900, 90000)}, "
                  f"nrcpt={len(rcpts)} (queue active)")
        self.emit(t + 0.45, sp, f"disconnect from {host}[{ip}] ehlo=2 starttls=1 auth=1 mail=1 "
                  f"rcpt={len(rcpts)} data=1 quit=1 commands={6 + len(rcpts)}")
        te = t + 0.5
        for rc in rcpts:
            te += self.r.uniform(0.05, 0.6)
            mx = self.ip("mta", self.r.randint(0, 5000))
            if self.r.random() < bounce:
                self.emit(te, f"postfix/smtp[{pid + 2}]", f"{q}: to=<{rc}>, relay=mx.example.net[{mx}]:25, "
                          "delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host mx.example.net"
                          f"[{mx}] said: 550 5.1.1 <{rc}>: Recipient address rejected: User unknown "
                          "(in reply to RCPT TO command))")
            else:
                self.emit(te, f"postfix/smtp[{pid + 2}]", f"{q}: to=<{rc}>, relay=mx.example.net[{mx}]:25, "
                          "delay=0.9, delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as "
                          f"{self.qid()})")
        self.emit(te + 0.01, f"postfix/qmgr[{900}]", f"{q}: removed")
        return te

    def inbound(self, t: float, user: str) -> None:
        pid, q = self.newpid(), self.qid()
        ip = self.ip("mta", self.r.randint(0, 5000))
        host = f"mail{self.r.randint(1, 99)}.example.com"
        self.emit(t, f"postfix/postscreen[{pid - 1}]", f"CONNECT from [{ip}]:{self.r.randint(1025, 65000)} to "
                  f"[{LIP}]:25")
        self.emit(t + 0.01, f"postfix/postscreen[{pid - 1}]", f"PASS OLD [{ip}]:{self.r.randint(1025, 65000)}")
        self.emit(t + 0.02, f"postfix/smtpd[{pid}]", f"connect from {host}[{ip}]")
        self.emit(t + 0.1, f"postfix/smtpd[{pid}]", f"{q}: client={host}[{ip}]")
        self.emit(t + 0.2, f"postfix/cleanup[{pid + 1}]", f"{q}: message-id=<{self.session()}@example.com>")
        self.emit(t + 0.3, "postfix/qmgr[900]", f"{q}: from=<news@example.com>, size={self.r.randint(2000, 200000)}, "
                  "nrcpt=1 (queue active)")
        self.emit(t + 0.35, f"postfix/smtpd[{pid}]", f"disconnect from {host}[{ip}] ehlo=2 starttls=1 mail=1 "
                  "rcpt=1 data=1 quit=1 commands=7")
        self.emit(t + 0.4, f"postfix/lmtp[{pid + 2}]", f"{q}: to=<{user}>, relay={MX}.{DOMAIN}[private/dovecot-lmtp], "
                  f"delay=0.4, delays=0.3/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <{user}> "
                  f"{self.session()} Saved)")
        self.emit(t + 0.41, "postfix/qmgr[900]", f"{q}: removed")

    def reject(self, t: float) -> None:
        ip = self.ip("bots", self.r.randint(0, 60))
        self.emit(t, f"postfix/smtpd[{self.newpid()}]", f"NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 "
                  f"<x{self.r.randint(1, 999)}@example.net>: Relay access denied; from=<spam@example.com> "
                  f"to=<x@example.net> proto=ESMTP helo=<WIN-{self.r.randint(100, 999)}>")

    def render(self, path: Path) -> int:
        with open(path, "w", encoding="utf-8") as f:
            return self.render_before(f, float("inf"))

    def render_before(self, f: TextIO, end: float) -> int:
        """Write the lines dated before *end* in time order, keep the others; how many were written."""
        self.out.sort()
        k = bisect.bisect_left(self.out, (end,))
        for t, _, msg in self.out[:k]:
            ts = datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="microseconds")
            f.write(f"{ts} {MX} {msg}\n")
        del self.out[:k]
        return k


def generate(path: str | Path, lines: int = 20_000, seed: int = 1, plan: str = "doc", days: int = 1) -> Truth:
    """Write about *lines* lines to *path*: one day, or with *days* > 1 that many consecutive days of the
    same population (about ``lines / days`` lines a day: the day of ``--lines lines/days``, repeated with
    the clock advancing, fresh randomness every day, the guessing bots on new addresses every day);
    return what was injected. ``days = 1`` writes exactly what it always did (same seed, same file)."""
    if days < 1:
        raise ValueError("days must be >= 1")
    g = _Gen(seed, plan)
    truth = Truth()
    per_day = lines // days
    # Scale: about 60 lines per user-day of normal activity, the rest inbound mail and noise.
    users = max(30, per_day // 120)
    names = [f"user{i:05d}@{DOMAIN}" for i in range(users)]
    if days == 1:
        _day(g, DAY.timestamp(), names, per_day, truth, 0)
        truth.lines = g.render(Path(path))
        return truth
    with open(path, "w", encoding="utf-8") as f:
        for d in range(days):
            t0 = DAY.timestamp() + d * 86400.0
            _day(g, t0, names, per_day, truth, d)
            # what is dated before the next day is final (the next day's lines all come later); the rest (a
            # session logging out after midnight) waits to be merged with the next day's lines
            truth.lines += g.render_before(f, t0 + 86400.0 if d < days - 1 else float("inf"))
    return truth


def _day(g: _Gen, t0: float, names: list[str], lines: int, truth: Truth, day: int) -> None:
    """One day of traffic from *t0* (day number *day*, 0 for the first)."""
    r = g.r
    users = len(names)
    start = g.seq
    for i, u in enumerate(names):
        home = g.ip("home", i)
        office = g.ip("office", i % 50)
        for _ in range(r.randint(3, 9)):
            t = t0 + r.uniform(6 * 3600, 23 * 3600)
            g.imap_login(t, u, office if 9 * 3600 < t - t0 < 17 * 3600 else home)
        if r.random() < 0.6:
            for _ in range(r.randint(1, 4)):
                t = t0 + r.uniform(7 * 3600, 22 * 3600)
                g.submit(t, u, home, [f"friend{r.randint(1, 999)}@example.net" for _ in range(r.randint(1, 3))])
        if r.random() < 0.03:  # a typo now and then: one failure, then success
            t = t0 + r.uniform(7 * 3600, 22 * 3600)
            g.imap_fail(t, u, home)
            g.imap_login(t + 20, u, home)
    # inbound mail and rejects fill the rest
    budget = lines - (g.seq - start) - 9000 * max(1, lines // 1_000_000)
    n_in = max(50, int(budget * 0.9) // 9)
    for _ in range(n_in):
        g.inbound(t0 + r.uniform(0, 86399), names[r.randrange(users)])
    for _ in range(max(20, int(budget * 0.1) // 2)):
        g.reject(t0 + r.uniform(0, 86399))

    # password-guessing bots: fast ones (per-IP report) and slow ones (quiet)
    for b in range(max(3, lines // 200_000)):
        ip = g.ip("bots", 100 + b + day * 1000)
        t = t0 + r.uniform(3600, 80000)
        for k in range(45):
            g.smtp_auth_fail(t + k * 5, r.choice(["admin", "info", "test", "sales", "office"]), ip)
        truth.per_ip.add(ip)
    for b in range(5):
        ip = g.ip("bots", 200 + b + day * 1000)
        t = t0 + r.uniform(3600, 70000)
        for k in range(15):
            g.smtp_auth_fail(t + k * 300, r.choice(["admin", "info", "test"]), ip)

    # -- injected compromises ------------------------------------------------------------------------
    hop = f"hop@{DOMAIN}"
    g.imap_login(t0 + 8 * 3600, hop, g.ip("home", 501))
    g.imap_login(t0 + 10 * 3600 + 12, hop, g.ip("home", 501))
    g.imap_login(t0 + 10 * 3600 + 52, hop, g.ip("hop", 3))
    truth.expected[hop] = {"geo_countries", "impossible_travel"}

    vps = f"vps@{DOMAIN}"
    g.imap_login(t0 + 7 * 3600, vps, g.ip("home", 502))
    t = t0 + 14 * 3600
    vps_ip = g.ip("vps", 9)
    for k in range(310):
        t = g.submit(t + r.uniform(1, 6), vps, vps_ip, [f"lead{k * 5 + j}@example.net" for j in range(5)],
                     bounce=0.4)
    truth.expected[vps] = {"send_burst", "bounce_ratio"}

    bf = f"bf@{DOMAIN}"
    bf_ip = g.ip("bf", 5)
    t = t0 + 3 * 3600 + 600
    for k in range(20):
        g.imap_fail(t + k * 12, bf, bf_ip, attempts=3, span=9)
    g.imap_login(t + 20 * 12 + 30, bf, bf_ip)
    truth.expected[bf] = {"bruteforce_success"}
    truth.per_ip.add(bf_ip)

    # -- benign look-alikes --------------------------------------------------------------------------
    trav = f"traveller@{DOMAIN}"
    g.imap_login(t0 + 5 * 3600, trav, g.ip("home", 503))
    g.imap_login(t0 + 5 * 3600 + 3600, trav, g.ip("mobile", 503))
    g.imap_login(t0 + 15 * 3600 + 1800, trav, g.ip("nyc", 7))  # 10 h later, 6400 km away
    g.imap_login(t0 + 18 * 3600, trav, g.ip("nyc", 7))
    phone = f"stalephone@{DOMAIN}"
    ph_ip = g.ip("home", 504)
    t = t0 + 6 * 3600
    while t < t0 + 12 * 3600:
        g.imap_fail(t, phone, ph_ip)
        t += r.uniform(150, 400)
    g.imap_login(t + 60, phone, ph_ip)
    mob = f"mobile@{DOMAIN}"
    for k in range(45):
        g.imap_login(t0 + 6 * 3600 + k * 1200, mob, g.ip("mobile", 600 + k))
    truth.benign = [trav, phone, mob]




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plan", choices=("doc", "public"), default="doc")
    ap.add_argument("--days", type=int, default=1,
                    help="spread --lines over this many consecutive days of the same population (default 1)")
    a = ap.parse_args()
    tr = generate(a.out, a.lines, a.seed, a.plan, a.days)
    print(f"{tr.lines} lines written to {a.out}")


if __name__ == "__main__":
    main()
