"""The sd_notify sender against a real datagram socket that nobody reads."""

from __future__ import annotations

import socket

from supervisor.sdnotify import Notifier


def test_a_full_notify_queue_drops_watchdog_pings_instead_of_blocking(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        notifier = Notifier({"NOTIFY_SOCKET": path})
        # Far more than a datagram socket queues; a blocking send would hang here for good.
        sent = [notifier.notify("WATCHDOG=1") for _ in range(500)]
        assert sent[0] is True
        assert sent.count(False) > 0
        assert listener.recv(64) == b"WATCHDOG=1"
