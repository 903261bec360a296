"""What a registration's `host` may be: an IP address or a DNS name the router can dial.

Gorouter dials `host:port` as given, so a host such as `not a host!` or `10.0.0.5:8080` is
accepted there and fails on every request. Here it is refused when registered:

- an IPv4 address in dotted-quad form, or an IPv6 address without brackets or zone
  (`10.0.0.5`, `fd00::5`); the router adds the brackets when it forms `[fd00::5]:8080`;
- or a DNS name of RFC 1123 labels: letters, digits and inner hyphens, 1-63 characters each,
  at most 253 characters in all, one trailing dot allowed. A name whose last label is all
  digits is refused: it is a mistyped IPv4 address (`10.0.0.256`), never a name (RFC 3696 §2).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Final

MAX_DNS_NAME: Final = 253
_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def is_ip_address(host: str) -> bool:
    """A plain IPv4 or IPv6 address (no brackets, no port, no zone)."""
    if "%" in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_dns_name(host: str) -> bool:
    """RFC 1123 host name, optionally fully qualified with a trailing dot."""
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > MAX_DNS_NAME:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():
        return False
    return all(_LABEL.fullmatch(label) for label in labels)


def is_backend_host(host: str) -> bool:
    # The length first: only short strings are remembered, so the cache stays small.
    return len(host) <= MAX_DNS_NAME + 1 and _is_short_backend_host(host)


# Heartbeats repeat the same few hosts; remembering the answer keeps a storm cheap.
@lru_cache(maxsize=4096)
def _is_short_backend_host(host: str) -> bool:
    return is_ip_address(host) or is_dns_name(host)


def host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets, as Go's net.JoinHostPort writes it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
