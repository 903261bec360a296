"""Sticky sessions, as Gorouter does them: `__VCAP_ID__` pins a client to an instance once the
application has set a session cookie (`JSESSIONID` by default), or, with
`sticky_sessions_for_auth_negotiate`, once it has answered `WWW-Authenticate: Negotiate`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

VCAP_ID: Final = "__VCAP_ID__"
# Gorouter's lifetime of a __VCAP_ID__ issued for a Negotiate (SPNEGO) handshake.
NEGOTIATE_MAX_AGE: Final = 60


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


def vcap_id_from_cookies(header: str) -> str:
    """`__VCAP_ID__` alone, as a Negotiate request pins by it (no session cookie needed)."""
    if VCAP_ID not in header:
        return ""
    return parse_cookie_header(header).get(VCAP_ID, "")


class SetCookie(NamedTuple):
    """The parts of a `Set-Cookie` value the sticky cookie copies (attribute names are matched
    without regard to case, as browsers and Go do)."""

    name: str
    secure: bool
    same_site: str
    max_age: str
    expires: str
    partitioned: bool


def parse_set_cookie(value: str) -> SetCookie | None:
    first, *attributes = value.split(";")
    name, sep, _ = first.partition("=")
    name = name.strip()
    if not sep or not name:
        return None
    secure = partitioned = False
    same_site = max_age = expires = ""
    for attribute in attributes:
        key, _, attribute_value = attribute.strip().partition("=")
        key = key.strip().lower()
        attribute_value = attribute_value.strip()
        if key == "secure":
            secure = True
        elif key == "partitioned":
            partitioned = True
        elif key == "samesite":
            same_site = attribute_value
        elif key == "max-age":
            max_age = attribute_value
        elif key == "expires":
            expires = attribute_value
    return SetCookie(name, secure, same_site, max_age, expires, partitioned)


class StickyRules(NamedTuple):
    """The config's sticky-cookie rules, built once per config."""

    session_names: frozenset[str]
    secure_cookies: bool
    negotiate: bool  # sticky_sessions_for_auth_negotiate


def vcap_id_cookie(
    set_cookie_values: Iterable[str],
    rules: StickyRules,
    instance_id: str,
    path: str,
    requested: str,
    www_authenticate: str = "",
) -> str | None:
    """The `Set-Cookie` value for `__VCAP_ID__`, or None when none is due.

    Due when the application set a session cookie (copying its Secure, SameSite, Expires,
    Partitioned, and Max-Age when it ends the session), when it answered a Negotiate challenge
    (with `negotiate` on: 60 s, SameSite=Strict), or when the client asked for an instance that
    did not serve it. Never when the application set `__VCAP_ID__` itself. `secure_cookies`
    makes it Secure always. Attributes in the order Go writes them, as Gorouter's.
    """
    if not instance_id:
        return None
    session: SetCookie | None = None
    for value in set_cookie_values:
        cookie = parse_set_cookie(value)
        if cookie is None:
            continue
        if cookie.name == VCAP_ID:
            return None
        if session is None and cookie.name in rules.session_names:
            session = cookie
    negotiate = rules.negotiate and www_authenticate[:9].lower() == "negotiate"
    # Gorouter's rule: a Negotiate answer, or a client pinned elsewhere, re-pins it here; a
    # session cookie always does (but a Negotiate answer's cookie wins).
    due = (negotiate or bool(requested)) and requested != instance_id
    if not due and (negotiate or session is None):
        return None
    parts = [f"{VCAP_ID}={instance_id}", f"Path={path or '/'}"]
    secure = rules.secure_cookies
    same_site = ""
    partitioned = False
    if negotiate:
        parts.append(f"Max-Age={NEGOTIATE_MAX_AGE}")
        same_site = "Strict"
    elif session is not None:
        if session.expires:
            parts.append(f"Expires={session.expires}")
        if _ends_session(session.max_age):
            parts.append("Max-Age=0")
        secure = secure or session.secure
        same_site = _SAME_SITE.get(session.same_site.lower(), "")
        partitioned = session.partitioned
    parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    if same_site:
        parts.append(f"SameSite={same_site}")
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


# Go's cookie parser knows these; it drops any other SameSite value.
_SAME_SITE: Final = {"lax": "Lax", "strict": "Strict", "none": "None"}


def _ends_session(max_age: str) -> bool:
    """Gorouter copies a session cookie's Max-Age only when it deletes the cookie (0 or less)."""
    try:
        return max_age != "" and int(max_age) <= 0
    except ValueError:
        return False
