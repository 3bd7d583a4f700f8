"""IP addresses as logs, operators and fail2ban write them: the one place that reads them.

Postfix writes ``[192.0.2.1]`` and ``IPv6:2001:db8::1``, Dovecot ``rip=::ffff:192.0.2.1``, an operator may type
``fe80::1%eth0`` or surrounding space. Every stage (parsing, geolocation, network classes, lockers, the
decision log, the CLI) reads an address through :func:`parse_ip`, so that one client has one address
everywhere: IPv4-mapped IPv6 is the IPv4 address, the text is Python's canonical form.
"""

from __future__ import annotations

import functools
import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str | None) -> IPAddress | None:
    """The address in *text* (tolerating surrounding space, ``[brackets]``, Postfix's ``IPv6:`` prefix and a
    ``%zone``); an IPv4-mapped IPv6 address becomes IPv4. None when *text* is no address."""
    if not text or not isinstance(text, str):
        return None
    s = text.strip()
    if s[:1] == "[":
        s = s.strip("[]")
    if s[:5] in ("IPv6:", "IPV6:", "ipv6:"):
        s = s[5:]
    try:
        addr = ipaddress.ip_address(s.partition("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@functools.lru_cache(maxsize=65536)
def ip_text(text: str | None) -> str | None:
    """The canonical text of the address in *text* (see :func:`parse_ip`), or None: what events carry
    (cached: a log repeats its clients' addresses)."""
    addr = parse_ip(text)
    return None if addr is None else str(addr)
