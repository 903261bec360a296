"""The host and path a request is routed by, from its Host header and request target."""

from __future__ import annotations

from registry.routekey import normalize_host

_normalized: dict[str, str] = {}


def lookup_host_and_path(host_header: str, target: str) -> tuple[str, str]:
    """Lower-cased host without port or trailing dot, and the path without its query.

    An absolute-form target (`GET http://host/path`) names the authority, which wins over Host.
    """
    if target[:1] == "/":
        # Origin form, the common case: the Host header as normalised before, if seen before.
        host = _normalized.get(host_header)
        if host is None:
            if len(_normalized) >= 4096:
                _normalized.clear()
            host = _normalized[host_header] = normalize_host(host_header)
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
