"""The systemd notification protocol (sd_notify), the few lines of it acctwatch needs: ``READY=1`` once the
daemon follows its sources, ``WATCHDOG=1`` from its main loop (so that systemd restarts a hung daemon with
``WatchdogSec=``), ``STATUS=`` for ``systemctl status`` and ``STOPPING=1``. Without ``$NOTIFY_SOCKET``
(not started by systemd with ``Type=notify``) every call does nothing."""

from __future__ import annotations

import os
import socket
import time


class SdNotify:
    def __init__(self) -> None:
        addr = os.environ.get("NOTIFY_SOCKET") or ""
        if addr.startswith("@"):  # an abstract socket
            addr = "\0" + addr[1:]
        self.addr = addr if addr.startswith(("/", "\0")) else ""
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        ok = usec.isdigit() and (not pid or pid == str(os.getpid()))
        #: how often to ping the watchdog (half its timeout, as systemd recommends); 0: no watchdog
        self.watchdog_interval = int(usec) / 2e6 if ok else 0.0
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.addr)

    def send(self, *fields: str) -> bool:
        if not self.addr:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect(self.addr)
                s.sendall("\n".join(fields).encode())
            return True
        except OSError:
            return False  # systemd went away: nothing to tell

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        """Ping the watchdog when it is due (cheap to call on every loop)."""
        if not self.watchdog_interval:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self.send("WATCHDOG=1")
