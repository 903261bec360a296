"""Sticky sessions, as Gorouter does them: `__VCAP_ID__` pins a client to an instance once the
application has set a session cookie (`JSESSIONID` by default)."""

from __future__ import annotations

from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Final

VCAP_ID: Final = "__VCAP_ID__"


def parse_cookie_header(header: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def sticky_instance_from_cookies(header: str, session_names: frozenset[str]) -> str:
    """The instance id to prefer: set only when a session cookie and `__VCAP_ID__` are both sent."""
    if VCAP_ID not in header:
        return ""
    cookies = parse_cookie_header(header)
    if not any(name in cookies for name in session_names):
        return ""
    return cookies.get(VCAP_ID, "")


def vcap_id_cookie(
    set_cookie_values: Iterable[str],
    session_names: frozenset[str],
    instance_id: str,
    path: str,
    requested: str,
) -> str | None:
    """The `Set-Cookie` value for `__VCAP_ID__`, or None when none is due.

    Due when the application set a session cookie (copying its Secure, SameSite, Max-Age and
    Expires), or when the client asked for an instance that did not serve it. Never when the
    application set `__VCAP_ID__` itself.
    """
    if not instance_id:
        return None
    session: SimpleCookie | None = None
    for value in set_cookie_values:
        try:
            parsed = SimpleCookie()
            parsed.load(value)
        except CookieError:
            continue
        names = set(parsed)
        if VCAP_ID in names:
            return None
        if session is None and names & session_names:
            session = parsed
    if session is None and not (requested and requested != instance_id):
        return None
    parts = [f"{VCAP_ID}={instance_id}", f"Path={path or '/'}", "HttpOnly"]
    if session is not None:
        morsel = next(morsel for name, morsel in session.items() if name in session_names)
        if morsel["secure"]:
            parts.append("Secure")
        if morsel["samesite"]:
            parts.append(f"SameSite={morsel['samesite']}")
        if morsel["max-age"]:
            parts.append(f"Max-Age={morsel['max-age']}")
        if morsel["expires"]:
            parts.append(f"Expires={morsel['expires']}")
    return "; ".join(parts)
