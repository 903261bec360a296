"""Bodies stream both ways with their framing intact; upgrades tunnel after a real 101."""

from __future__ import annotations

import hashlib
import http.client
import socket

import pytest

from tests.support.rawhttp import header_of, read_response, status_of
from tests.support.routes import routed_routerd
from tests.support.websocket import websocket_replies

pytestmark = pytest.mark.integration
HOST = "bodies.example.com"


@pytest.fixture(scope="module")
def router(module_nats, module_backends):
    backend = module_backends(name="bodies")
    with routed_routerd(module_nats.port, backend.port, HOST, {"workers": 1}) as router:
        yield router


def test_content_length_body_arrives_intact(router):
    body = bytes(range(256)) * 1000
    response = router.request("PUT", "/upload", host=HOST, body=body)
    echo = response.json()
    assert echo["body_len"] == len(body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert echo["chunked"] is False


def test_chunked_request_body_stays_chunked(router):
    chunks = [b"first-", b"second-" * 1000, b"third"]
    connection = http.client.HTTPConnection("127.0.0.1", router.port, timeout=10)
    connection.putrequest("POST", "/chunked", skip_host=True)
    connection.putheader("Host", HOST)
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for chunk in chunks:
        connection.send(b"%x\r\n%b\r\n" % (len(chunk), chunk))
    connection.send(b"0\r\n\r\n")
    echo = __import__("json").loads(connection.getresponse().read())
    connection.close()
    body = b"".join(chunks)
    assert echo["chunked"] is True
    assert echo["body_len"] == len(body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("size", [10, 200_000], ids=["small", "streamed"])
def test_expect_100_continue(router, size):
    body = b"z" * size
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(
            f"POST /expect HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {size}\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        interim = sock.recv(64)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        response = read_response(sock)
    assert status_of(response) == 200
    assert b'"body_len": %d' % size in response or b'"body_len":%d' % size in response


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_response_framing_is_preserved(router, chunked):
    size = 300_000
    path = f"/bytes/{size}" + ("?chunked=1" if chunked else "")
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        response_head = head + b"\r\n\r\n"
        if chunked:
            assert header_of(response_head, "Transfer-Encoding") == "chunked"
            assert header_of(response_head, "Content-Length") is None
            while not rest.endswith(b"0\r\n\r\n"):
                rest += sock.recv(65536)
            decoded, remaining = b"", rest
            while True:
                size_line, _, remaining = remaining.partition(b"\r\n")
                length = int(size_line, 16)
                if length == 0:
                    break
                decoded += remaining[:length]
                remaining = remaining[length + 2 :]
            assert decoded == b"x" * size
        else:
            assert header_of(response_head, "Content-Length") == str(size)
            while len(rest) < size:
                rest += sock.recv(65536)
            assert rest == b"x" * size


def test_head_keeps_the_backend_content_length(router):
    response = router.request("HEAD", "/bytes/12345", host=HOST)
    assert response.status == 200
    assert response.header("Content-Length") == "12345"
    assert response.body == b""


def test_websocket_echo(router):
    url = f"http://127.0.0.1:{router.port}/ws"
    replies = websocket_replies(url, HOST, ["hello", "world", b"\x00\x01binary"])
    assert replies == ["echo: hello", "echo: world", b"\x00\x01binary"]


def test_upgrade_refused_by_backend_is_relayed_not_tunnelled(router):
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(
            f"GET /plain HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\n\r\n".encode()
        )
        response = read_response(sock)
    assert status_of(response) == 200


def test_pipelined_requests_are_answered_in_order(router):
    requests = b"".join(
        f"GET /pipe/{index} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode() for index in range(5)
    )
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(requests)
        # One buffered reader for all five: responses may arrive in a single segment.
        reader = sock.makefile("rb")
        paths = []
        for _ in range(5):
            status = int(reader.readline().split(b" ", 2)[1])
            length = 0
            for _ in range(100):
                line = reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            assert status == 200
            paths.append(__import__("json").loads(reader.read(length))["path"])
        reader.close()
    assert paths == [f"/pipe/{index}" for index in range(5)]


def test_http_10_client_gets_a_complete_response(router):
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as sock:
        sock.sendall(f"GET /bytes/5000?chunked=1 HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.")
    assert b"chunked" not in head.lower()
    assert body == b"x" * 5000
