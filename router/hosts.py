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


def lookup_host_and_path(host_header: str, target: str) -> tuple[str, str] | None:
    """Lower-cased host without port or trailing dot, and the path without its query; None when
    the Host header holds bytes no host can (Go's server answers those 400 before routing).

    An absolute-form target (`GET http://host/path`) names the authority, which wins over Host.
    """
    # Computed for every request, not remembered: compiled, this costs less than a cache of
    # recent Hosts did once requests spread over many hosts (its misses, inserts and clears).
    if not is_valid_host_header(host_header):
        return None
    host = normalize_host(host_header)
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
