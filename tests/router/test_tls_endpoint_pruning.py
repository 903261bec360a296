"""A TLS endpoint that fails to connect or to set up TLS leaves its route's pool for every
worker (Gorouter's EndpointFailed for prunable errors), until it registers again."""

from __future__ import annotations

import pytest

from tests.support.certs import CertificateAuthority
from tests.support.routes import register, route_addresses, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
SAN = "backend.internal"
HOST = "pruned.example.com"


@pytest.fixture
def pki(tmp_path):
    ca = CertificateAuthority()
    return ca, *ca.issue(SAN).write(tmp_path, "backend")


def failures_for(router, address: str) -> int:
    return sum(
        1
        for event in router.events_named("backend-endpoint-failed")
        if event["data"].get("backend") == address
    )


def served_without_new_failures(router, address: str, count: int) -> bool:
    """`count` requests, each served by the good endpoint, none meeting `address`."""
    before = failures_for(router, address)
    for _ in range(count):
        response = router.get("/", host=HOST)
        assert (response.status, response.header("X-Backend")) == (200, "good")
    return failures_for(router, address) == before


def test_an_endpoint_failing_tls_leaves_the_pool_for_every_worker_until_it_registers_again(
    routerd_factory, nats_client, backend_factory, pki
):
    ca, cert, key = pki
    router = routerd_factory({"ca_certs": [ca.cert_pem], "workers": 2})
    good = backend_factory("--cert", str(cert), "--key", str(key), name="good")
    bad = backend_factory("--cert", str(cert), "--key", str(key), name="bad")
    register(nats_client, 0, [HOST], tls_port=good.port, server_cert_domain_san=SAN)
    wait_routed(router, HOST)
    # Its certificate is not valid for the SAN it registered with. Registered once the good one
    # serves, and waited for without requests: a request would meet it and prune it first.
    register(nats_client, 0, [HOST], tls_port=bad.port, server_cert_domain_san="other.internal")
    wait_until(lambda: len(route_addresses(router, HOST)) == 2, what="both endpoints routed")

    # Some worker meets the bad endpoint: the request is retried on the good one.
    for _ in range(20):
        response = router.get("/", host=HOST)
        assert (response.status, response.header("X-Backend")) == (200, "good")
        if failures_for(router, bad.address):
            break
    wait_until(
        lambda: route_addresses(router, HOST) == [good.address],
        what="the failed endpoint to leave the route table",
    )
    # The new table reaches the workers moments after /routes shows it; a worker that has not
    # read it yet may meet the endpoint once more.
    wait_until(
        lambda: served_without_new_failures(router, bad.address, 10),
        what="every worker to skip the failed endpoint",
    )
    met = failures_for(router, bad.address)
    assert 1 <= met <= 2  # the other worker too, if it took a request before the table changed
    pruned = router.events_named("prune-failed-endpoint")
    assert any(event["data"].get("error", "").startswith("x509:") for event in pruned)

    # Every worker (new connections spread over both) now sends every request to the good one,
    # at its first attempt.
    for _ in range(30):
        response = router.get("/", host=HOST)
        assert (response.status, response.header("X-Backend")) == (200, "good")
    assert failures_for(router, bad.address) == met
    assert bad.requests_seen() == []

    # Registering again brings it back (here with the SAN its certificate is valid for).
    register(nats_client, 0, [HOST], tls_port=bad.port, server_cert_domain_san=SAN)
    wait_until(
        lambda: route_addresses(router, HOST) == sorted([good.address, bad.address]),
        what="the endpoint to be routed again",
    )
    served = {router.get("/", host=HOST).header("X-Backend") for _ in range(20)}
    assert served == {"good", "bad"}


def test_the_only_endpoint_failing_tls_leaves_an_empty_route(
    routerd_factory, nats_client, backend_factory, pki, tmp_path
):
    ca, _, _ = pki
    stranger = CertificateAuthority("someone else's CA")
    cert, key = stranger.issue(SAN).write(tmp_path, "untrusted")
    router = routerd_factory({"ca_certs": [ca.cert_pem], "workers": 2})
    untrusted = backend_factory("--cert", str(cert), "--key", str(key), name="untrusted")
    register(nats_client, 0, [HOST], tls_port=untrusted.port, server_cert_domain_san=SAN)
    wait_routed(router, HOST)  # its requests meet the untrusted certificate (526)
    wait_until(lambda: failures_for(router, untrusted.address) == 1, what="the failure")
    # Gone for every worker; the route stays, empty, until the pruner's next cycle, as in
    # Gorouter.
    wait_until(lambda: route_addresses(router, HOST) == [], what="the route to empty")
    # A worker that has not read the new table yet may meet it once more (then hides it at
    # once); from then on no worker does.
    wait_until(
        lambda: all(
            router.get("/", host=HOST).header("X-Cf-RouterError") == "no_endpoints"
            for _ in range(10)
        ),
        what="every worker to answer from the emptied route",
    )
    met = failures_for(router, untrusted.address)
    assert 1 <= met <= 2
    for _ in range(10):
        response = router.get("/", host=HOST)
        assert response.status == 503
        assert response.header("X-Cf-RouterError") == "no_endpoints"
    assert failures_for(router, untrusted.address) == met


def test_a_static_route_failing_tls_stays_in_the_table(routerd_factory, backend_factory, pki):
    ca, cert, key = pki
    good = backend_factory("--cert", str(cert), "--key", str(key), name="good")
    bad = backend_factory("--cert", str(cert), "--key", str(key), name="bad")
    static = [
        {"host": "127.0.0.1", "port": 0, "tls_port": good.port, "uris": [HOST]}
        | {"server_cert_domain_san": SAN},
        {"host": "127.0.0.1", "port": 0, "tls_port": bad.port, "uris": [HOST]}
        | {"server_cert_domain_san": "other.internal"},
    ]
    router = routerd_factory({"ca_certs": [ca.cert_pem], "static_routes": static})
    for _ in range(20):
        response = router.get("/", host=HOST)
        assert (response.status, response.header("X-Backend")) == (200, "good")
        if router.events_named("prune-failed-static-endpoint-kept"):
            break
    # Nothing would register it again: it stays, and is only skipped for a while.
    kept = wait_until(
        lambda: router.events_named("prune-failed-static-endpoint-kept"), what="the kept event"
    )
    assert kept[0]["data"]["backend"] == bad.address
    assert route_addresses(router, HOST) == sorted([good.address, bad.address])
