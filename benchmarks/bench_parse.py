#!/usr/bin/env python3
"""Parse-only benchmark: acctwatch's LineParser against a bare ``for line in f`` loop, in one process.

Usage::

    python benchmarks/bench_parse.py                 # generate a realistic 300 000-line mail log
    python benchmarks/bench_parse.py /var/log/mail.log --repeat 3

Prints lines/s of both loops, their ratio (parser time / bare loop time) and peak memory. Not a test:
timings depend on the machine; nothing asserts on them.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acctwatch.headers import Clock
from acctwatch.parsing import LineParser, PatternSet

# Roughly the mix of a busy MX + submission + IMAP server: most lines are NOT events.
SHAPES: list[tuple[int, str]] = [
    (14, "{ts} mx postfix/smtpd[{pid}]: connect from {host}[{ip}]"),
    (14, "{ts} mx postfix/smtpd[{pid}]: disconnect from {host}[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"),
    (8, "{ts} mx postfix/smtpd[{pid}]: {qid}: client={host}[{ip}]"),
    (2, "{ts} mx postfix/submission/smtpd[{pid}]: {qid}: client={host}[{ip}], sasl_method=PLAIN, "
        "sasl_username=user{n}@example.org"),
    (10, "{ts} mx postfix/cleanup[{pid}]: {qid}: message-id=<{n}.{pid}@example.net>"),
    (10, "{ts} mx postfix/qmgr[99]: {qid}: from=<sender{n}@example.net>, size={n}, nrcpt=1 (queue active)"),
    (10, "{ts} mx postfix/lmtp[{pid}]: {qid}: to=<user{n}@example.org>, relay=mx[private/dovecot-lmtp], "
         "delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <user{n}@example.org> Saved)"),
    (8, "{ts} mx postfix/qmgr[99]: {qid}: removed"),
    (4, "{ts} mx postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {host}[{ip}]: 554 5.7.1 Service unavailable; "
        "Client host [{ip}] blocked using zen.spamhaus.org; from=<x@y.example> to=<user{n}@example.org> "
        "proto=ESMTP helo=<{host}>"),
    (3, "{ts} mx postfix/smtpd[{pid}]: warning: {host}[{ip}]: SASL LOGIN authentication failed: "
        "UGFzc3dvcmQ6, sasl_username=user{n}"),
    (3, "{ts} mx postfix/smtpd[{pid}]: disconnect from {host}[{ip}] ehlo=1 auth=0/1 quit=1 commands=2/3"),
    (3, "{ts} mx postfix/smtpd[{pid}]: Anonymous TLS connection established from {host}[{ip}]: TLSv1.3 with "
        "cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"),
    (5, "{ts} mx dovecot: imap-login: Login: user=<user{n}@example.org>, method=PLAIN, rip={ip}, lip=192.0.2.1, "
        "mpid={pid}, TLS, session=<abc{n}>"),
    (5, "{ts} mx dovecot: imap(user{n}@example.org)<{pid}><abc{n}>: Disconnected: Logged out in=120 out=4000 "
        "deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0"),
    (2, "{ts} mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<user{n}>, "
        "method=PLAIN, rip={ip}, lip=192.0.2.1, TLS, session=<d{n}>"),
    (2, "{ts} mx dovecot: imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip={ip}, "
        "lip=192.0.2.1, TLS handshaking: SSL_accept() failed"),
    (3, "{ts} mx dovecot: lmtp({pid}): Connect from local"),
    (3, "{ts} mx dovecot: lmtp(user{n}@example.org)<{pid}><x{n}>: msgid=<{n}@example.net>: saved mail to INBOX"),
    (2, "{ts} mx CRON[{pid}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)"),
]


def generate(path: Path, n_lines: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    weights = [w for w, _ in SHAPES]
    shapes = [s for _, s in SHAPES]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n_lines):
            sec = i // 40
            ts = f"Nov 26 {sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
            shape = rnd.choices(shapes, weights)[0]
            ip = f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
            fh.write(shape.format(ts=ts, pid=rnd.randint(100, 99999), host=f"h{rnd.randint(1, 9999)}.example.net",
                                  ip=ip, qid=f"4{rnd.getrandbits(40):010X}", n=rnd.randint(1, 5000)) + "\n")


def bare(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        for _line in fh:
            n += 1
    return n


def parse(path: Path, ps: PatternSet) -> tuple[int, int]:
    parser = LineParser(ps, Clock(zone="UTC", year=2026), source=str(path))
    events = 0
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if parser.parse_bytes(line, n) is not None:
                events += 1
    return parser.stats.lines, events


def best_of(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", nargs="?", help="log file to parse (default: generate one)")
    ap.add_argument("--lines", type=int, default=300_000, help="lines to generate (default 300000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per loop; the best is reported")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.log) if args.log else Path(tmp) / "mail.log"
        if not args.log:
            generate(path, args.lines)
        ps = PatternSet.load()
        t_bare, n = best_of(lambda: bare(path), args.repeat)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t_parse, (lines, events) = best_of(lambda: parse(path, ps), args.repeat)  # type: ignore[misc]
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"file:          {path} ({n} lines)")
    print(f"patterns:      {len(ps.patterns)} ({len(ps.literals)} prefilter literals)")
    print(f"bare loop:     {n / t_bare:,.0f} lines/s ({t_bare:.3f} s)")
    print(f"parser:        {lines / t_parse:,.0f} lines/s ({t_parse:.3f} s), {events} events")
    print(f"ratio:         {t_parse / t_bare:.1f}x the bare loop's time")
    print(f"peak RSS:      {rss1 / 1024:.1f} MiB (grew {max(rss1 - rss0, 0) / 1024:.1f} MiB while parsing)")


if __name__ == "__main__":
    main()
