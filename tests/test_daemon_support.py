"""Helpers for the daemon/follow tests (no tests here): a fake GeoIP, a log generator, and a runner that
starts the real ``acctwatch`` CLI in a subprocess with the fake GeoIP (``python tests/test_daemon_support.py
run -c ...``), because the test MMDBs may not exist in every checkout."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakegeo import FakeGeoInfo

T0 = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)
COUNTRY = {"192.0.2.": "DE", "198.51.100.": "US", "203.0.113.": "AU"}


FakeGeoResult = FakeGeoInfo


class FakeGeo:
    is_embedded = False

    def lookup(self, ip: str) -> FakeGeoResult:
        for prefix, cc in COUNTRY.items():
            if ip.startswith(prefix):
                return FakeGeoResult(ip, False, cc)
        return FakeGeoResult(ip, True, None)


def login_line(ts: datetime, account: str, ip: str, fmt: str = "rfc3339") -> str:
    msg = f"imap-login: Login: user=<{account}>, method=PLAIN, rip={ip}, lip=10.0.0.1, mpid=1, TLS"
    if fmt == "bsd":
        return f"{ts.strftime('%b %d %H:%M:%S')} mx dovecot: {msg}"
    return f"{ts.strftime('%Y-%m-%dT%H:%M:%S')}+00:00 mx dovecot: {msg}"


def make_log(n: int, seed: int = 1, attack_every: int = 7) -> list[list[str]]:
    """Groups of lines (a group is written in one write): normal logins from Germany, every
    *attack_every*-th group an attack (Germany then the US 5 s later). Each account's logins are more than a
    minute apart outside attacks, so detection windows never span two groups: the incidents are the same
    however the groups are cut into batches (and across restarts)."""
    rnd = random.Random(seed)
    out: list[list[str]] = []
    ts = T0
    prev = ""
    for i in range(n):
        ts += timedelta(seconds=61)
        acct = prev
        while acct == prev:  # consecutive groups never share an account: windows stay inside a group
            acct = f"user{rnd.randrange(40)}@example.org"
        prev = acct
        if i % attack_every == attack_every - 1:
            out.append([login_line(ts, acct, f"192.0.2.{rnd.randrange(1, 250)}"),
                        login_line(ts + timedelta(seconds=5), acct, f"198.51.100.{rnd.randrange(1, 250)}")])
        else:
            out.append([login_line(ts, acct, f"192.0.2.{rnd.randrange(1, 250)}")])
    return out


TEST_CONFIG = """
[general]
timezone = "UTC"
year = 2026
incident_cooldown = "1s"

[detectors.impossible_travel]
enabled = false

[sources]
files = {files}
poll_interval = "{poll}"
rotate_grace = "0.2s"
instance = "test"
"""


def write_config(path: Path, files: list[str], poll: str = "0.05s", extra: str = "") -> Path:
    path.write_text(TEST_CONFIG.format(files="[" + ", ".join(f'"{f}"' for f in files) + "]", poll=poll) + extra)
    return path


def patch_geo() -> None:
    import acctwatch.app

    acctwatch.app.open_geo = lambda config: FakeGeo()  # type: ignore[assignment]


if __name__ == "__main__":
    patch_geo()
    from acctwatch.cli import main

    sys.exit(main(sys.argv[1:]))
