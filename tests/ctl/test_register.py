"""`routerctl register` / `unregister` publish Gorouter messages that routerd acts on."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest

from tests.ctl.conftest import (
    PATIENCE,
    BackendFactory,
    RouterFactory,
    RunCtl,
    assert_one_line_error,
    routerctl_command,
)
from tests.support.nats import NatsClient, NatsServer
from tests.support.ports import free_port
from tests.support.routerd import Routerd
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def endpoints_of(router: Routerd, uri: str) -> list[dict[str, Any]]:
    routes: dict[str, list[dict[str, Any]]] = router.status_json("/routes?ttl_left=1")
    return routes.get(uri, [])


def test_register_then_unregister_round_trip(
    routerd_factory: RouterFactory, backend_factory: BackendFactory, routerctl: RunCtl
) -> None:
    router = routerd_factory()
    backend = backend_factory()
    message = [
        "--config", str(router.config_path),
        "--host", "127.0.0.1",
        "--port", str(backend.port),
        "--uri", "web.ctl.test",
        "--uri", "WEB.ctl.test/api",
    ]  # fmt: skip
    fields = [
        "--app", "app-guid",
        "--instance-id", "instance-guid",
        "--instance-index", "2",
        "--tag", "component=web",
        "--tag", "team=routing",
        "--stale-threshold", "1m",
    ]  # fmt: skip

    registered = routerctl("register", *message, *fields)

    assert registered.returncode == 0, registered.stderr
    assert registered.stdout == (
        f"registered 127.0.0.1:{backend.port} for web.ctl.test, WEB.ctl.test/api\n"
    )
    wait_until(
        lambda: endpoints_of(router, "web.ctl.test/api"), timeout=PATIENCE, what="web.ctl.test/api"
    )
    (endpoint,) = endpoints_of(router, "web.ctl.test")
    assert endpoint["address"] == backend.address
    assert endpoint["app"] == "app-guid"
    assert endpoint["private_instance_id"] == "instance-guid"
    assert endpoint["private_instance_index"] == "2"
    assert endpoint["tags"] == {"component": "web", "team": "routing"}
    assert endpoint["ttl"] == 60
    wait_until(
        lambda: router.get("/", host="web.ctl.test").status == 200, timeout=PATIENCE, what="proxied"
    )

    unregistered = routerctl("unregister", *message)

    assert unregistered.returncode == 0, unregistered.stderr
    assert unregistered.stdout == (
        f"unregistered 127.0.0.1:{backend.port} for web.ctl.test, WEB.ctl.test/api\n"
    )
    wait_until(
        lambda: (
            not endpoints_of(router, "web.ctl.test")
            and not endpoints_of(router, "web.ctl.test/api")
        ),
        timeout=PATIENCE,
        what="routes unregistered",
    )


def test_register_uses_nats_url_without_a_config(
    routerd_factory: RouterFactory, nats_server: NatsServer, routerctl: RunCtl
) -> None:
    router = routerd_factory()

    result = routerctl(
        "register", "--config", "/nonexistent.yml", "--nats-url", nats_server.url,
        "--host", "10.1.2.3", "--port", "8443", "--uri", "url.ctl.test",
    )  # fmt: skip
    tls = routerctl(
        "register", "--nats-url", nats_server.url, "--host", "10.1.2.4", "--tls-port", "8443",
        "--san", "backend.internal", "--uri", "url.ctl.test",
    )  # fmt: skip

    # An explicit --config must be readable, even when nothing is taken from it.
    assert_one_line_error(result, 2)
    assert tls.returncode == 0, tls.stderr
    assert tls.stdout == "registered 10.1.2.4:8443 (tls) for url.ctl.test\n"
    wait_until(lambda: endpoints_of(router, "url.ctl.test"), timeout=PATIENCE, what="url.ctl.test")
    (endpoint,) = endpoints_of(router, "url.ctl.test")
    assert endpoint["tls"] is True
    assert endpoint["server_cert_domain_san"] == "backend.internal"
    assert endpoint["ttl_left"] is None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_heartbeat_re_registers_until_signalled_then_unregisters(
    signum: signal.Signals,
    routerd_factory: RouterFactory,
    backend_factory: BackendFactory,
    nats_client: NatsClient,
) -> None:
    router = routerd_factory()
    backend = backend_factory()
    sent = nats_client.subscribe("router.register")
    command = routerctl_command(
        "register", "--config", str(router.config_path), "--host", "127.0.0.1",
        "--port", str(backend.port), "--uri", "beat.ctl.test", "--heartbeat", "200ms",
    )  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: endpoints_of(router, "beat.ctl.test"), timeout=PATIENCE, what="beat.ctl.test"
        )
        for _ in range(3):  # the registration is re-sent, again and again
            assert sent.get(timeout=PATIENCE).json() == {
                "host": "127.0.0.1",
                "port": backend.port,
                "uris": ["beat.ctl.test"],
            }
        assert router.get("/", host="beat.ctl.test").status == 200

        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, stderr
    assert stderr == ""
    assert stdout.splitlines() == [
        f"127.0.0.1:{backend.port} for beat.ctl.test:",
        "  registered; re-sending every 0.2s (Ctrl-C unregisters)",
        "  unregistered",
    ]
    wait_until(
        lambda: not endpoints_of(router, "beat.ctl.test"), timeout=PATIENCE, what="unregistered"
    )


def test_invalid_messages_fail_before_publishing(routerctl: RunCtl) -> None:
    # No NATS listens here: validation must fail first, with a usage error.
    nats = f"nats://127.0.0.1:{free_port()}"
    base = ["--nats-url", nats, "--host", "10.0.0.1", "--uri", "bad.ctl.test"]

    no_port = routerctl("register", *base)
    plain_service = routerctl(
        "register", *base, "--port", "80", "--route-service-url", "http://rs.test"
    )
    bad_uri = routerctl(
        "unregister", "--nats-url", nats, "--host", "h", "--port", "80", "--uri", "x y"
    )

    assert "port or tls_port is required" in assert_one_line_error(no_port, 2)
    assert "route_service_url must be https" in assert_one_line_error(plain_service, 2)
    assert "has an invalid host" in assert_one_line_error(bad_uri, 2)


def test_register_exits_3_when_nats_is_unreachable(routerctl: RunCtl) -> None:
    port = free_port()

    result = routerctl(
        "register", "--nats-url", f"nats://user:secret@127.0.0.1:{port}",
        "--host", "10.0.0.1", "--port", "80", "--uri", "a.ctl.test",
    )  # fmt: skip

    line = assert_one_line_error(result, 3)
    assert line.startswith(f"routerctl: cannot reach NATS: nats://127.0.0.1:{port}: ")
    assert "secret" not in line
