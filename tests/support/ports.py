"""Loopback ports for test processes."""

from __future__ import annotations

import socket
from collections import deque

# Ports handed out lately, oldest first: the kernel may give the same free port to two binds in
# a row, and one config's listeners (port, status.port, ...) must not be handed the same one.
_RECENT: deque[int] = deque(maxlen=4096)


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago (for configs that need one), and
    not one of the ports this process was handed lately."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _RECENT:
            _RECENT.append(port)
            return port


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
