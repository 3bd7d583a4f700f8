"""One reader of IP addresses for every stage: the same client is the same address everywhere."""

from __future__ import annotations

import ipaddress

import pytest

from acctwatch.geo import lookup_address
from acctwatch.ipaddr import ip_text, parse_ip


@pytest.mark.parametrize(("text", "want"), [
    ("192.0.2.1", "192.0.2.1"),
    (" 192.0.2.1\n", "192.0.2.1"),
    ("[192.0.2.1]", "192.0.2.1"),
    ("IPv6:2001:DB8::1", "2001:db8::1"),  # Postfix writes IPv6 client addresses so in some places
    ("[IPv6:2001:db8:0::1]", "2001:db8::1"),
    ("::ffff:192.0.2.7", "192.0.2.7"),  # Dovecot on a dual-stack socket
    ("fe80::1%eth0", "fe80::1"),
    ("64:ff9b::c000:201", "64:ff9b::c000:201"),  # (NAT64 stays what it is: geolocation reads it as IPv4)
    ("unknown", None), ("", None), (None, None), ("1.2.3", None), ("192.0.2.1:25", None), ("a@b", None),
])
def test_ip_text(text: str | None, want: str | None) -> None:
    assert ip_text(text) == want
    addr = parse_ip(text)
    assert (None if addr is None else str(addr)) == want


def test_geolocation_reads_nat64_as_the_ipv4_address_it_carries() -> None:
    assert lookup_address("64:ff9b::c000:201") == ipaddress.IPv4Address("192.0.2.1")
    assert lookup_address("[::ffff:192.0.2.1]") == ipaddress.IPv4Address("192.0.2.1")
    assert lookup_address("2001:db8::1") == ipaddress.IPv6Address("2001:db8::1")
    assert lookup_address("garbage") is None


def test_every_stage_reads_an_address_the_same_way() -> None:
    """The parser's event address, the decision log's, report-ban's and the fail2ban locker's agree."""
    import click

    from acctwatch.cli.fail2ban import _parse_ip
    from acctwatch.headers import Clock
    from acctwatch.parsing import LineParser, PatternSet

    p = LineParser(PatternSet.load(), Clock(zone="UTC", year=2026))
    ev = p.parse("Nov 26 07:12:01 mx dovecot: imap-login: Login: user=<bob@example.org>, method=PLAIN, "
                 "rip=::ffff:203.0.113.9, lip=192.0.2.1, mpid=4242, TLS, session=<abc>")
    assert ev is not None and ev.ip == "203.0.113.9" == _parse_ip(" [::ffff:203.0.113.9] ")
    assert str(parse_ip("::FFFF:203.0.113.9")) == ev.ip
    with pytest.raises(click.BadParameter, match="not an IPv4 or IPv6 address"):
        _parse_ip("203.0.113")
