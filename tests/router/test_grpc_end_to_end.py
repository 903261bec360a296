"""gRPC end to end: a grpcio client with generated stubs calls a grpcio service through routerd's
TLS listener (HTTP/2 by ALPN), and routerd reaches the service over HTTP/2 too: h2c with prior
knowledge, or TLS with ALPN h2 and its SAN checked. Each kind of call, an error status, a
deadline, a cancel and a 4 MiB message, over both backend hops.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest

from tests.support.certs import CertificateAuthority
from tests.support.grpc_echo import MESSAGE_OPTIONS, EchoService, generate, serve
from tests.support.nats import NatsClient
from tests.support.ports import free_port
from tests.support.routerd import Routerd, new_routerd
from tests.support.routes import register, wait_routed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

H2C_HOST = "grpc.example.com"
TLS_HOST = "grpc-tls.example.com"
DEAD_HOST = "grpc-dead.example.com"  # registered, nothing listening
UNKNOWN_HOST = "grpc-unknown.example.com"  # never registered
BACKEND_SAN = "echo.grpc.internal"
# Shorter than the calls that must outlive it: the router bounds the wait for a response head
# by endpoint_timeout only when the call has no deadline of its own (grpc-timeout).
ENDPOINT_TIMEOUT = 1


class Setup:
    def __init__(self, directory: Path) -> None:
        self.messages, self.services = generate(directory)
        self.ca = CertificateAuthority("gRPC test CA")
        self.router_cert = self.ca.issue("*.example.com")
        self.backend_cert = self.ca.issue(BACKEND_SAN)
        self.plain = EchoService(self.messages)
        self.tls = EchoService(self.messages)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(tmp_path_factory.mktemp("grpc-stubs"))


@pytest.fixture(scope="module")
def router(module_nats, setup: Setup) -> Iterator[Routerd]:
    plain_server, plain_port = serve(setup.services, setup.plain)
    credentials = grpc.ssl_server_credentials(
        [(setup.backend_cert.key_pem.encode(), setup.backend_cert.cert_pem.encode())]
    )
    tls_server, tls_port = serve(setup.services, setup.tls, credentials)
    cert = setup.router_cert
    router = new_routerd(
        module_nats.port,
        {
            "workers": 2,
            "endpoint_timeout": ENDPOINT_TIMEOUT,
            "enable_ssl": True,
            "ssl_port": free_port(),
            "tls_pem": [{"cert_chain": cert.cert_pem, "private_key": cert.key_pem}],
            "ca_certs": [setup.ca.cert_pem],
        },
    )
    router.start()
    try:
        with NatsClient(module_nats.port) as nats:
            register(nats, plain_port, [H2C_HOST], protocol="http2")
            register(
                nats,
                0,
                [TLS_HOST],
                tls_port=tls_port,
                server_cert_domain_san=BACKEND_SAN,
                protocol="http2",
            )
            register(nats, free_port(), [DEAD_HOST], protocol="http2")
        wait_routed(router, H2C_HOST)
        wait_routed(router, TLS_HOST)
        wait_routed(router, DEAD_HOST)
        yield router
    finally:
        router.stop()
        plain_server.stop(grace=None)
        tls_server.stop(grace=None)


class Client:
    """A stub on a TLS channel to routerd for one route, and the service behind that route."""

    def __init__(self, setup: Setup, router: Routerd, host: str) -> None:
        credentials = grpc.ssl_channel_credentials(root_certificates=setup.ca.cert_pem.encode())
        options = [
            ("grpc.ssl_target_name_override", host),
            ("grpc.default_authority", host),
            *MESSAGE_OPTIONS,
        ]
        port = router.config["ssl_port"]
        self.channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options)
        self.stub: Any = setup.services.EchoStub(self.channel)
        self.messages: ModuleType = setup.messages
        self.service = setup.tls if host == TLS_HOST else setup.plain

    def note(self, text: str = "", blob: bytes = b"") -> Any:
        return self.messages.Note(text=text, blob=blob)


@pytest.fixture(params=[H2C_HOST, TLS_HOST], ids=["h2c-backend", "tls-h2-backend"])
def client(request: pytest.FixtureRequest, setup: Setup, router: Routerd) -> Iterator[Client]:
    client = Client(setup, router, request.param)
    try:
        yield client
    finally:
        client.channel.close()


def test_unary_call_reaches_the_service_with_the_router_headers(client: Client) -> None:
    reply = client.stub.Say(client.note("hello"), timeout=10)
    assert reply.text == "said hello"
    seen = client.service.metadata[-1]
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-vcap-request-id"]
    assert seen["user-agent"].startswith("grpc-python")


def test_server_streaming_call_delivers_every_message_in_order(client: Client) -> None:
    replies = [note.text for note in client.stub.Count(client.note("500"), timeout=20)]
    assert replies == [str(number) for number in range(500)]


def test_client_streaming_call_gathers_every_message(client: Client) -> None:
    notes = (client.note(str(number)) for number in range(300))
    reply = client.stub.Gather(notes, timeout=20)
    assert reply.text == ",".join(str(number) for number in range(300))


def test_bidirectional_call_answers_each_message_before_the_next_is_sent(client: Client) -> None:
    # The next note is sent only after the reply to the last one has arrived: both directions
    # of one stream are open at once through both hops.
    outbox: queue.Queue[Any] = queue.Queue()

    def notes() -> Iterator[Any]:
        while (note := outbox.get(timeout=10)) is not None:
            yield note

    outbox.put(client.note("0"))
    replies = []
    call = client.stub.Chat(notes(), timeout=20)
    for reply in call:
        replies.append(reply.text)
        number = len(replies)
        outbox.put(client.note(str(number)) if number < 20 else None)
    assert replies == [f"re: {number}" for number in range(20)]


def test_error_status_and_message_reach_the_client(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        client.stub.Say(client.note("fail"), timeout=10)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    assert failure.value.details() == "no such note: fail"


def test_a_deadline_longer_than_endpoint_timeout_is_not_cut_short(client: Client) -> None:
    reply = client.stub.Say(client.note(f"sleep {ENDPOINT_TIMEOUT + 0.5}"), timeout=10)
    assert reply.text == f"said sleep {ENDPOINT_TIMEOUT + 0.5}"


def test_a_deadline_that_passes_ends_the_call_at_the_client(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        client.stub.Say(client.note("sleep 5"), timeout=0.5)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_cancelled_call_is_cancelled_at_the_service(client: Client) -> None:
    client.service.cancelled.clear()
    call = client.stub.Count(client.note("100000", blob=b"slow"), timeout=30)
    assert [next(call).text, next(call).text] == ["0", "1"]
    call.cancel()
    # The client's RST_STREAM reached the service through the router: its call ended
    # cancelled long before its 100,000 notes.
    wait_until(client.service.cancelled.is_set, timeout=10, what="the service to see the cancel")


def test_a_4_mib_message_goes_both_ways_whole(client: Client) -> None:
    blob = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    reply = client.stub.Say(client.note("big", blob=blob), timeout=30)
    assert reply.text == "said big"
    assert reply.blob == blob


@pytest.mark.parametrize(
    ("host", "code"),
    [
        # The router's own 404 (unknown_route) and 502 (a dead endpoint), as gRPC clients read
        # an HTTP status that is not 200 (gRPC's HTTP-to-status mapping).
        (UNKNOWN_HOST, grpc.StatusCode.UNIMPLEMENTED),
        (DEAD_HOST, grpc.StatusCode.UNAVAILABLE),
    ],
    ids=["unknown-route", "dead-backend"],
)
def test_a_call_the_router_cannot_serve_gets_a_status_the_client_understands(
    setup: Setup, router: Routerd, host: str, code: grpc.StatusCode
) -> None:
    client = Client(setup, router, host)
    try:
        with pytest.raises(grpc.RpcError) as failure:
            client.stub.Say(client.note("hello"), timeout=10)
    finally:
        client.channel.close()
    assert failure.value.code() == code
