"""This router's IP address, as Gorouter announces it (`router.start`'s `hosts`) and shows it in
`X-Vcap-Router`: the bind address when one is set, else the address of the interface that routes
to the first NATS server."""

from __future__ import annotations

import socket

from runtime.config_model import Config

_WILDCARDS = ("0.0.0.0", "::", "")


def router_ip(config: Config) -> str:
    if config.bind_address not in _WILDCARDS:
        return config.bind_address
    first = config.nats.hosts[0]
    # A UDP "connect" sends nothing; it only picks the interface that routes to NATS.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((first.hostname, first.port))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
