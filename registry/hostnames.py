"""Host names in the form routes are stored and looked up in.

Its own module so that it can be compiled: a worker normalises the Host of every request.
"""

from __future__ import annotations


def strip_port(host: str) -> str:
    """`Example.com:8080` → `Example.com`; `[::1]:80` → `[::1]`."""
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    colon = host.find(":")
    return host if colon == -1 else host[:colon]


def normalize_host(host: str) -> str:
    """The form hosts are stored and looked up in: lower case, no port, no trailing dot."""
    host = strip_port(host.strip()).lower()
    return host[:-1] if host.endswith(".") else host
