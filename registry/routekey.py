"""Route keys as Gorouter forms them, and the order in which lookups try them.

A route key is a lower-cased host (port and trailing dot removed) plus an optional context path
(`/a/b`, percent-escaped, no query, no trailing `/`). Requests match the longest context path by
whole segments; on a miss, wildcards replace labels from the left: `a.b.c.com` → `*.b.c.com` →
`*.c.com` → `*.com`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import msgspec

from registry.hostnames import normalize_host
from registry.rejection import Rejection

# What may appear in a path without escaping (RFC 3986 pchar plus "/"); "%" keeps existing escapes.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
# A whole host in one match: an optional leftmost "*" label, then labels of at most 63 chars.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = re.compile(rf"(?:\*|{_LABEL})(?:\.{_LABEL})*")


class RouteKey(msgspec.Struct, frozen=True, order=True, gc=False):
    host: str
    path: str = ""

    def __str__(self) -> str:
        return self.host + self.path


def normalize_path(path: str) -> str:
    """Lower-cased, escaped, no query, no trailing slash; "" for the root."""
    # Lower-case after escaping, so "/ü" and "/%C3%BC" both become "/%c3%bc" as lookups do.
    path = quote(path.split("?", 1)[0], safe=_PATH_SAFE).lower()
    path = path.rstrip("/")
    if path and not path.startswith("/"):
        path = "/" + path
    return path


def route_key_from_uri(uri: str) -> RouteKey | Rejection:
    """Parse a registered uri such as `app.example.com/api/v1`."""
    text = uri.strip()
    if "://" in text:
        return Rejection(f"uri {uri!r} must not have a scheme", "uri_invalid")
    host, slash, path = text.partition("/")
    host = normalize_host(host)
    if not host:
        return Rejection(f"uri {uri!r} has no host", "uri_invalid")
    if not is_valid_host(host):
        return Rejection(f"uri {uri!r} has an invalid host", "uri_invalid")
    return RouteKey(host, normalize_path(slash + path) if slash else "")


def is_valid_host(host: str) -> bool:
    if len(host) > 253:
        return False
    if host.startswith("[") and host.endswith("]"):
        return all(c in "0123456789abcdef:." for c in host[1:-1])
    return _HOST.fullmatch(host) is not None


def next_wildcard(host: str) -> str | None:
    """`a.b.c.com` → `*.b.c.com`, `*.b.c.com` → `*.c.com`, ..., `*.com` → None."""
    rest = host.removeprefix("*.")
    dot = rest.find(".")
    return "*." + rest[dot + 1 :] if dot != -1 else None


def host_candidates(host: str) -> Iterator[str]:
    """The exact host, then each wildcard from the deepest to the shallowest."""
    candidate: str | None = host
    while candidate is not None:
        yield candidate
        candidate = next_wildcard(candidate)


def path_prefixes(path: str) -> Iterator[str]:
    """`/a/b/c` → `/a/b/c`, `/a/b`, `/a`, `` (whole segments, longest first)."""
    path = path.rstrip("/")
    while path:
        yield path
        path = path[: path.rfind("/")].rstrip("/")
    yield ""
