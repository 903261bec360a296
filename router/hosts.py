"""The host and path a request is routed by, from its Host header and request target."""

from __future__ import annotations

import re
from typing import Final

from registry.hostnames import normalize_host

# Go's httpguts.ValidHostHeader: the bytes a host name, an IP literal and a port can hold.
# Anything else (a space, quotes, angle brackets, control bytes) is `400 malformed Host header`.
_VALID_HOST: Final = re.compile(r"[0-9A-Za-z!$%&'()*+,\-.:;=\[\]_~]*").fullmatch


def is_valid_host_header(host_header: str) -> bool:
    return _VALID_HOST(host_header) is not None


class _LastHost:
    """The last valid Host header looked up, and its host. A keep-alive client names the same
    Host on each of its requests, so a worker's next request mostly does too; checking and
    normalizing a Host costs half a microsecond, comparing it with the last one a few
    nanoseconds. (A cache of many recent Hosts cost more than it saved once requests spread
    over many hosts: its misses, inserts and clears.)"""

    def __init__(self) -> None:
        self.header = ""
        self.host = normalize_host("")

    def __repr__(self) -> str:
        return f"_LastHost({self.header!r})"


_last: Final = _LastHost()


def lookup_host_and_path(host_header: str, target: str) -> tuple[str, str] | None:
    """Lower-cased host without port or trailing dot, and the path without its query; None when
    the Host header holds bytes no host can (Go's server answers those 400 before routing).

    An absolute-form target (`GET http://host/path`) names the authority, which wins over Host.
    """
    last = _last
    if host_header == last.header:
        host = last.host
    elif is_valid_host_header(host_header):
        host = normalize_host(host_header)
        last.header = host_header
        last.host = host
    else:
        return None
    if target[:1] == "/":  # origin form, the common case
        query = target.find("?")
        return host, target if query == -1 else target[:query]
    if target.startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        authority, slash, path = rest.partition("/")
        host_header = authority.rpartition("@")[2] or host_header
        target = slash + path
    path = target.split("?", 1)[0]
    return normalize_host(host_header), path


def origin_form(target: str) -> str:
    """`http://host/p?q` → `/p?q`: backends get the origin form."""
    if target.startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash != -1 else "/"
    return target or "/"


def authority_of(target: str) -> str | None:
    if target.startswith(("http://", "https://")):
        return target.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
    return None
