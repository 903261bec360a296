"""systemd's sd_notify protocol: a datagram to $NOTIFY_SOCKET. Does nothing outside systemd."""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET", "")
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_seconds = int(usec) / 1e6 if usec.isdigit() else 0.0
        if pid and pid.isdigit() and int(pid) != os.getpid():
            self.watchdog_seconds = 0.0  # the watchdog is meant for another process

    def __repr__(self) -> str:
        return f"Notifier(socket={self.address!r}, watchdog={self.watchdog_seconds}s)"

    @property
    def is_enabled(self) -> bool:
        return bool(self.address)

    def notify(self, *states: str, wait: float = 0.0) -> bool:
        """Send `states`; True when sent. A receiver whose queue is full is waited for up to
        `wait` seconds, never longer: the supervisor's loop must not stall on systemd."""
        if not self.address:
            return False
        address = self.address
        if address.startswith("@"):
            address = "\0" + address[1:]  # an abstract socket
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(wait)
                sock.sendto("\n".join(states).encode(), address)
        except OSError:
            return False
        return True

    def ready(self) -> None:
        # Start-up and stop are worth a short wait; a missed watchdog ping is repeated anyway.
        self.notify("READY=1", "STATUS=serving", wait=2.0)

    def stopping(self) -> None:
        self.notify("STOPPING=1", wait=2.0)

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")
