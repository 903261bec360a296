"""A real gRPC server (grpcio) registered with `protocol: http2`, called through routerd as raw
gRPC over HTTP/1.1: the status travels in HTTP/2 trailers and must reach the client as chunked
trailers.

The service uses protobuf's well-known `StringValue` message with grpcio's generic handlers: real
protobuf bodies, no generated stubs to keep in step with grpcio (the router never reads the
messages; it relays frames, trailers and deadlines).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import wrappers_pb2

from tests.support.routerd import Routerd
from tests.support.routes import register, wait_routed

pytestmark = pytest.mark.integration
SERVICE = "routerd.test.Echo"


def _say(request: wrappers_pb2.StringValue, context: grpc.ServicerContext) -> Any:
    if request.value == "fail":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    if request.value.startswith("sleep "):
        time.sleep(float(request.value.split()[1]))
    return wrappers_pb2.StringValue(value=f"hello {request.value}")


def _count(request: wrappers_pb2.StringValue, context: grpc.ServicerContext) -> Iterator[Any]:
    for number in range(int(request.value)):
        yield wrappers_pb2.StringValue(value=f"{number:08d}" + "x" * 1000)


@pytest.fixture(scope="module")
def grpc_port() -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(
            _say,
            request_deserializer=wrappers_pb2.StringValue.FromString,
            response_serializer=wrappers_pb2.StringValue.SerializeToString,
        ),
        "Count": grpc.unary_stream_rpc_method_handler(
            _count,
            request_deserializer=wrappers_pb2.StringValue.FromString,
            response_serializer=wrappers_pb2.StringValue.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


@pytest.fixture
def router(routerd_factory, nats_client, grpc_port) -> Routerd:
    router: Routerd = routerd_factory({"workers": 1, "endpoint_timeout": 1})
    register(nats_client, grpc_port, ["grpc.example.com"], protocol="http2")
    wait_routed(router, "grpc.example.com")
    return router


def grpc_call(port: int, method: str, value: str, extra: bytes = b"") -> tuple[bytes, bytes]:
    """A unary or server-streaming call over HTTP/1.1: the response head and its raw body."""
    message = wrappers_pb2.StringValue(value=value).SerializeToString()
    body = struct.pack(">?I", False, len(message)) + message
    request = (
        (
            f"POST /{SERVICE}/{method} HTTP/1.1\r\nHost: grpc.example.com\r\n"
            "Content-Type: application/grpc\r\nTE: trailers\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode()
        + extra
        + b"\r\n"
        + body
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def dechunk(body: bytes) -> tuple[bytes, dict[str, str]]:
    data = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            fields = {}
            for line in body.split(b"\r\n"):
                name, sep, value = line.partition(b":")
                if sep:
                    fields[name.decode().lower()] = value.strip().decode()
            return data, fields
        data += body[:size]
        body = body[size + 2 :]


def messages(data: bytes) -> list[str]:
    found = []
    while data:
        _, length = struct.unpack(">?I", data[:5])
        found.append(wrappers_pb2.StringValue.FromString(data[5 : 5 + length]).value)
        data = data[5 + length :]
    return found


def header(head: bytes, name: str) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.encode():
            return value.strip().decode()
    return None


def test_unary_call_gets_its_message_and_grpc_status_trailer(router):
    head, body = grpc_call(router.port, "Say", "world")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert header(head, "content-type") == "application/grpc"
    assert header(head, "transfer-encoding") == "chunked"
    data, trailers = dechunk(body)
    assert messages(data) == ["hello world"]
    assert trailers["grpc-status"] == "0"


def test_error_status_and_message_reach_the_client(router):
    head, body = grpc_call(router.port, "Say", "fail")
    assert head.startswith(b"HTTP/1.1 200 ")
    # A trailers-only gRPC response carries its status in the head; otherwise in trailers.
    _, trailers = dechunk(body)
    fields = {**trailers}
    for name in ("grpc-status", "grpc-message"):
        if header(head, name) is not None:
            fields[name] = header(head, name) or ""
    assert fields["grpc-status"] == "5"
    assert fields["grpc-message"] == "no such thing"


def test_server_streaming_call_streams_every_message(router):
    head, body = grpc_call(router.port, "Count", "2000")  # about 2 MB of messages
    assert head.startswith(b"HTTP/1.1 200 ")
    data, trailers = dechunk(body)
    got = messages(data)
    assert len(got) == 2000
    assert got[1999].startswith("00001999")
    assert trailers["grpc-status"] == "0"


def test_grpc_timeout_beyond_endpoint_timeout_is_not_cut_short(router):
    # endpoint_timeout is 1 s; the call takes 1.5 s within its own 5 s deadline.
    head, body = grpc_call(router.port, "Say", "sleep 1.5", b"Grpc-Timeout: 5S\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    data, trailers = dechunk(body)
    assert messages(data) == ["hello sleep 1.5"]
    assert trailers["grpc-status"] == "0"


def test_without_grpc_timeout_endpoint_timeout_bounds_the_head(router):
    head, _ = grpc_call(router.port, "Say", "sleep 1.5")
    assert head.startswith(b"HTTP/1.1 502 ")
