"""Route services, as Gorouter signs them.

A route bound to a route service gets each request sent there first, with three headers:
`X-CF-Forwarded-Url` (where the request was going), `X-CF-Proxy-Signature` (AES-GCM encrypted
JSON `{"forwarded_url", "requested_time"}`) and `X-CF-Proxy-Metadata` (JSON `{"nonce"}`), both
URL-safe base64. The route service sends the request back through the router with the headers
intact; the router checks the signature (current secret, then the decrypt-only previous one), its
age (`route_services_timeout`) and that it names this route, then forwards it to the app.

The key is PBKDF2-SHA256 of the secret (no salt, 100001 rounds, 16 bytes), as Gorouter derives it,
so routers and route services configured with the same secret interoperate.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import os
from typing import Final

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.rejection import Rejection

SIGNATURE: Final = "X-CF-Proxy-Signature"
METADATA: Final = "X-CF-Proxy-Metadata"
FORWARDED_URL: Final = "X-CF-Forwarded-Url"
HEADERS: Final = frozenset({b"x-cf-proxy-signature", b"x-cf-proxy-metadata", b"x-cf-forwarded-url"})
NONCE_BYTES: Final = 12


class SignatureContents(msgspec.Struct, frozen=True):
    forwarded_url: str
    requested_time: str


class _Metadata(msgspec.Struct, frozen=True):
    nonce: str  # standard base64, as Go marshals []byte


class Expired(Rejection, frozen=True):
    """The signature is genuine but older than route_services_timeout."""


def derive_key(secret: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), b"", 100001, 16)


def go_time(moment: datetime.datetime) -> str:
    """RFC 3339 with nanoseconds and trailing zeros trimmed, as Go's time.Time marshals."""
    text = moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0")
    return text.rstrip(".") + "Z"


def parse_time(text: str) -> datetime.datetime | None:
    try:
        # Python parses at most microseconds: cut Go's nanoseconds before the zone.
        head, dot, rest = text.partition(".")
        if dot:
            digits = "".join(c for c in rest if c.isdigit())
            zone = rest[len(digits) :]
            text = f"{head}.{digits[:6]}{zone}"
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class RouteServiceKeys:
    """Signs with the current secret; verifies with it or the decrypt-only previous one."""

    def __init__(self, secret: str, decrypt_only: str = "", timeout: float = 60.0) -> None:
        self._current = AESGCM(derive_key(secret))
        self._previous = AESGCM(derive_key(decrypt_only)) if decrypt_only else None
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RouteServiceKeys(previous={self._previous is not None}, timeout={self.timeout})"

    def sign(self, forwarded_url: str, now: datetime.datetime | None = None) -> tuple[str, str]:
        """(X-CF-Proxy-Signature, X-CF-Proxy-Metadata) for a request going to the service."""
        moment = now or datetime.datetime.now(datetime.UTC)
        contents = msgspec.json.encode(SignatureContents(forwarded_url, go_time(moment)))
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.encrypt(nonce, contents, b"")
        metadata = msgspec.json.encode(_Metadata(base64.b64encode(nonce).decode()))
        return base64.urlsafe_b64encode(sealed).decode(), base64.urlsafe_b64encode(
            metadata
        ).decode()

    def verify(
        self, signature: str, metadata: str, now: datetime.datetime | None = None
    ) -> SignatureContents | Rejection:
        """The signed contents, or why they cannot be trusted (Expired when only too old)."""
        if not metadata:
            return Rejection("No metadata found")
        try:
            meta = msgspec.json.decode(base64.urlsafe_b64decode(metadata), type=_Metadata)
            nonce = base64.b64decode(meta.nonce)
            sealed = base64.urlsafe_b64decode(signature)
        except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
            return Rejection(f"malformed signature headers: {exc}")
        if len(nonce) != NONCE_BYTES:  # Go's GCM takes no other length
            return Rejection(f"malformed signature headers: nonce of {len(nonce)} bytes")
        plain = None
        for key in (self._current, self._previous):
            if key is None:
                continue
            try:
                plain = key.decrypt(nonce, sealed, b"")
                break
            except (InvalidTag, ValueError):
                continue
        if plain is None:
            return Rejection("signature does not decrypt with the route service secret")
        try:
            contents = msgspec.json.decode(plain, type=SignatureContents)
        except msgspec.DecodeError as exc:
            return Rejection(f"malformed signature: {exc}")
        requested = parse_time(contents.requested_time)
        if requested is None:
            return Rejection("malformed signature: bad requested_time")
        moment = now or datetime.datetime.now(datetime.UTC)
        if (moment - requested).total_seconds() > self.timeout:
            return Expired("route service request expired")
        return contents


class HairpinAllowlist:
    """Gorouter's route_services_hairpinning_allowlist: which route services in the table may
    be reached through the router's own routing. Empty allows every one.

    Entries are host names (`rs.example.com`) or one-label wildcards (`*.example.com`), matched
    case-insensitively against the host of the route the service's URL resolves to; a wildcard
    matches a host one label deeper (`a.example.com`, and the wildcard route `*.example.com`),
    never the bare domain or two labels deeper.
    """

    __slots__ = ("_names",)

    def __init__(self, entries: tuple[str, ...]) -> None:
        # Wildcards are kept as their suffix (".example.com"), names as they are.
        self._names = frozenset(
            _without_first_label(entry.lower()) if entry.startswith("*") else entry.lower()
            for entry in entries
        )

    def __repr__(self) -> str:
        return f"HairpinAllowlist({sorted(self._names)})"

    def allows(self, route_host: str) -> bool:
        if not self._names:
            return True
        host = route_host.lower()
        return host in self._names or _without_first_label(host) in self._names


def _without_first_label(host: str) -> str:
    """`a.example.com` → `.example.com` (a host without a dot stays as it is)."""
    dot = host.find(".")
    return host[dot:] if dot != -1 else host
