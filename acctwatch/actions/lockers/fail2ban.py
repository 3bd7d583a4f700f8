"""``fail2ban``: ban the incident's attacking IPs in a named jail (``fail2ban-client set JAIL banip IP``);
unlock unbans exactly the IPs acctwatch banned. Runs for per-IP incidents too (no account needed)."""

from __future__ import annotations

from typing import Any

from ...config import ConfigError
from ...ipaddr import parse_ip
from .base import LockContext, Locker, LockResult


class Fail2banLocker(Locker):
    kind = "fail2ban"
    needs_account = False
    defaults = {
        "client": ["fail2ban-client"],
        "jail": None,
        "skip_private": False,  # do not ban RFC 1918/ULA addresses (a NAT gateway, an internal relay)
        "timeout": 30,
    }

    def __init__(self, name: str, options: dict[str, Any], ctx: LockContext) -> None:
        super().__init__(name, options, ctx)
        if not isinstance(self.options.get("jail"), str) or not self.options["jail"]:
            raise ConfigError(f"[lockers.{name}]: jail is required: the fail2ban jail to ban IPs in "
                              "(e.g. jail = \"acctwatch\", defined in jail.d with action = iptables-allports)")

    def _ips(self, incident: Any) -> tuple[list[str], list[str]]:
        good, skipped = [], []
        # the presumed attacker's addresses only: never ban the owner's own (office, home) address
        raws = getattr(incident, "attackers", None)
        for raw in (raws if raws is not None else getattr(incident, "ips", None)) or []:
            ip = parse_ip(str(raw))
            if ip is None:
                skipped.append(str(raw))
                continue
            if ip.is_loopback or ip.is_unspecified or ip.is_multicast or (
                    self.options["skip_private"] and ip.is_private):
                skipped.append(str(ip))
                continue
            good.append(str(ip))
        return list(dict.fromkeys(good)), skipped

    def plan(self, account: str | None, incident: Any = None) -> list[str]:
        ips, _skipped = self._ips(incident)
        client = " ".join(self.argv_option("client"))
        return [f"{client} set {self.options['jail']} banip {ip}" for ip in ips] or ["no address to ban"]

    def check(self) -> list[str]:
        return self.check_programs("client")

    def lock(self, account: str | None, incident: Any) -> LockResult:
        ips, skipped = self._ips(incident)
        jail = self.options["jail"]
        banned, errors = [], []
        for ip in ips:
            code, out = self.run([*self.argv_option("client"), "set", jail, "banip", ip])
            if code == 0:
                banned.append(ip)
            else:
                errors.append(f"{ip}: exit {code}: {out}")
        notes = []
        if banned:
            notes.append(f"banned in jail {jail}: {', '.join(banned)}")
        if skipped:
            notes.append(f"not banned: {', '.join(skipped)}")
        if errors:
            notes.append("failed: " + "; ".join(errors))
        if not ips:
            notes.append("no IP to ban")
        return self.result(not errors, "; ".join(notes), changed=bool(banned), jail=jail, ips=banned)

    def unlock(self, account: str | None, saved_state: dict[str, Any]) -> LockResult:
        jail = saved_state.get("jail") or self.options["jail"]
        errors, done = [], []
        for ip in saved_state.get("ips") or []:
            code, out = self.run([*self.argv_option("client"), "set", jail, "unbanip", ip])
            if code == 0:
                done.append(ip)
            else:
                errors.append(f"{ip}: exit {code}: {out}")
        detail = f"unbanned in jail {jail}: {', '.join(done) or 'none'}"
        if errors:
            detail += "; failed: " + "; ".join(errors)
        return self.result(not errors, detail, changed=bool(done))
