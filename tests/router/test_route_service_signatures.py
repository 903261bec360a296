"""Route-service signatures against an independent implementation written here from the format
alone (PBKDF2-HMAC-SHA256 key, AES-128-GCM, base64url), never importing the router's code:
what the router accepts, what it rejects and with which status, and what it sends."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.support.backends import start_route_service
from tests.support.certs import CertificateAuthority
from tests.support.nats import NatsClient
from tests.support.routerd import new_routerd
from tests.support.routes import register, wait_routed

pytestmark = pytest.mark.integration

SECRET = "current-secret"
PREVIOUS = "previous-secret"
HOST = "signed.example.com"

# Made once with independent_sign(SECRET, GOLDEN_URL, GOLDEN_TIME, bytes(range(12))). The
# requested time lies in the future, so the vector never expires (Gorouter checks only age).
GOLDEN_URL = f"https://{HOST}/golden?v=1"
GOLDEN_TIME = "2100-01-01T00:00:00Z"
GOLDEN_SIGNATURE = (
    "Fg6-dxTDg_T7jgCJJ0c481uN4O0b6iYf--UUcHC_bXGVm5aB5pgW7CG5HWBAHSJJI7V7aCs9Xw4GZfRxEErZsX08nsWX"
    "BUXwBrmvTs9S8VeVaoOu__9j-4cQZ38JCqWH9VEr49CdCPhmmzTaOSIiuV4="
)
GOLDEN_METADATA = "eyJub25jZSI6IkFBRUNBd1FGQmdjSUNRb0wifQ=="


def independent_key(secret: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), b"", 100001, 16)


def go_now(offset: datetime.timedelta = datetime.timedelta()) -> str:
    """Now as Go's time.Time marshals it (RFC 3339, nanoseconds)."""
    moment = datetime.datetime.now(datetime.UTC) + offset
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def independent_sign(
    secret: str, url: str, requested_time: str, nonce: bytes | None = None
) -> tuple[str, str]:
    nonce = os.urandom(12) if nonce is None else nonce
    plain = json.dumps(
        {"forwarded_url": url, "requested_time": requested_time}, separators=(",", ":")
    ).encode()
    sealed = AESGCM(independent_key(secret)).encrypt(nonce, plain, b"")
    metadata = json.dumps(
        {"nonce": base64.b64encode(nonce).decode()}, separators=(",", ":")
    ).encode()
    return base64.urlsafe_b64encode(sealed).decode(), base64.urlsafe_b64encode(metadata).decode()


def independent_open(secret: str, signature: str, metadata: str) -> dict[str, str]:
    nonce = base64.b64decode(json.loads(base64.urlsafe_b64decode(metadata))["nonce"])
    assert len(nonce) == 12
    plain = AESGCM(independent_key(secret)).decrypt(nonce, base64.urlsafe_b64decode(signature), b"")
    return json.loads(plain)


@pytest.fixture(scope="module")
def setup(module_nats, module_backends, tmp_path_factory):
    ca = CertificateAuthority()
    cert, key = ca.issue("localhost").write(tmp_path_factory.mktemp("rs-signatures"), "rs")
    app = module_backends(name="app")
    router = new_routerd(
        module_nats.port,
        {
            "ca_certs": [ca.cert_pem],
            "route_services_secret": SECRET,
            "route_services_secret_decrypt_only": PREVIOUS,
        },
    )
    router.start()
    service = start_route_service(module_backends, router.port, cert, key)
    with NatsClient(module_nats.port) as nats:
        register(nats, app.port, [HOST], route_service_url=f"https://localhost:{service.port}/rs")
        wait_routed(router, HOST)
    yield router, app, service
    router.stop()


def signed_get(router, path: str, signature: str, metadata: str):
    return router.get(
        path,
        host=HOST,
        headers={
            "X-CF-Proxy-Signature": signature,
            "X-CF-Proxy-Metadata": metadata,
            "X-CF-Forwarded-Url": f"https://{HOST}{path}",
        },
    )


def app_received(app, path: str) -> bool:
    return any(seen["path"] == path for seen in app.requests_seen())


def test_the_golden_vector_is_what_the_independent_implementation_makes():
    made = independent_sign(SECRET, GOLDEN_URL, GOLDEN_TIME, bytes(range(12)))
    assert made == (GOLDEN_SIGNATURE, GOLDEN_METADATA)
    assert base64.urlsafe_b64decode(GOLDEN_METADATA) == b'{"nonce":"AAECAwQFBgcICQoL"}'


def test_the_router_accepts_the_golden_vector(setup):
    router, _, _ = setup
    response = signed_get(router, "/golden?v=1", GOLDEN_SIGNATURE, GOLDEN_METADATA)
    assert response.status == 200, response.text
    echo = response.json()
    assert echo["backend"] == "app"
    received = {name.lower() for name, _ in echo["headers"]}
    assert not received & {"x-cf-proxy-signature", "x-cf-proxy-metadata", "x-cf-forwarded-url"}


def test_a_fresh_independent_signature_is_accepted(setup):
    router, _, _ = setup
    signature, metadata = independent_sign(SECRET, f"https://{HOST}/fresh", go_now())
    response = signed_get(router, "/fresh", signature, metadata)
    assert response.status == 200, response.text
    assert response.json()["path"] == "/fresh"


def test_a_signature_made_with_the_decrypt_only_secret_is_accepted(setup):
    router, _, _ = setup
    signature, metadata = independent_sign(PREVIOUS, f"https://{HOST}/rotated", go_now())
    response = signed_get(router, "/rotated", signature, metadata)
    assert response.status == 200, response.text
    assert response.json()["path"] == "/rotated"


def test_the_router_signature_opens_with_the_independent_implementation(setup):
    router, _, service = setup
    response = router.get("/from-router?id=3", host=HOST)
    assert response.status == 200, response.text
    assert response.header("X-Route-Service") == "route-service"
    seen = next(s for s in service.requests_seen() if s["forwarded_url"].endswith("id=3"))
    contents = independent_open(SECRET, seen["signature"], seen["metadata"])
    assert contents["forwarded_url"] == f"https://{HOST}/from-router?id=3"
    requested = datetime.datetime.fromisoformat(contents["requested_time"].replace("Z", "+00:00"))
    assert requested.tzinfo is not None


def test_an_expired_signature_is_504(setup):
    router, app, _ = setup
    an_hour_ago = go_now(-datetime.timedelta(hours=1))
    signature, metadata = independent_sign(SECRET, f"https://{HOST}/expired", an_hour_ago)
    response = signed_get(router, "/expired", signature, metadata)
    assert response.status == 504
    assert "Failed to validate Route Service Signature" in response.text
    assert not app_received(app, "/expired")


def tampered(signature: str) -> str:
    sealed = bytearray(base64.urlsafe_b64decode(signature))
    sealed[len(sealed) // 2] ^= 0x01
    return base64.urlsafe_b64encode(bytes(sealed)).decode()


INVALID = {
    "tampered": lambda url: (
        tampered(independent_sign(SECRET, url, go_now())[0]),
        independent_sign(SECRET, url, go_now())[1],
    ),
    "another secret": lambda url: independent_sign("not-the-secret", url, go_now()),
    "signature not base64": lambda url: (
        "%%%not-base64%%%",
        independent_sign(SECRET, url, go_now())[1],
    ),
    "metadata not base64": lambda url: (independent_sign(SECRET, url, go_now())[0], "%%%"),
    "16-byte nonce": lambda url: independent_sign(SECRET, url, go_now(), os.urandom(16)),
    "8-byte nonce": lambda url: independent_sign(SECRET, url, go_now(), os.urandom(8)),
    "no metadata": lambda url: (independent_sign(SECRET, url, go_now())[0], ""),
    "another route": lambda url: independent_sign(
        SECRET, url.replace(HOST, "other.example.com"), go_now()
    ),
}


@pytest.mark.parametrize("make", INVALID.values(), ids=INVALID.keys())
def test_an_invalid_signature_is_502_and_never_reaches_the_app(setup, make):
    router, app, _ = setup
    path = f"/bad-{uuid.uuid4().hex}"
    signature, metadata = make(f"https://{HOST}{path}")
    response = signed_get(router, path, signature, metadata)
    assert response.status == 502
    assert response.text.startswith("502 Bad Gateway: Failed to validate Route Service Signature")
    assert not app_received(app, path)


def test_a_websocket_on_a_route_service_route_is_503(setup):
    router, app, _ = setup
    response = router.get(
        "/ws",
        host=HOST,
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        },
    )
    assert response.status == 503
    assert response.text == (
        "503 Service Unavailable: Websocket requests are not supported for routes bound to "
        "Route Services.\n"
    )
    assert response.header("X-Cf-RouterError") == "route_service_unsupported"
    assert not app_received(app, "/ws")
