"""Raw HTTP/1.1 over a socket, for requests http.client cannot send (bad Host, Expect, ...)."""

from __future__ import annotations

import socket


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes, read until the server closes or the response is complete (Content-Length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock)


def read_response(sock: socket.socket) -> bytes:
    """One response (head, and a Content-Length body), never reading past it: responses to
    pipelined requests may arrive in one segment, and the next call must still find its own."""
    buffer = b""
    while True:
        peeked = sock.recv(65536, socket.MSG_PEEK)
        if not peeked:
            return buffer
        end = (buffer + peeked).find(b"\r\n\r\n")
        if end != -1:
            buffer += _recv_exactly(sock, end + 4 - len(buffer))
            break
        buffer += _recv_exactly(sock, len(peeked))
    length = None
    for line in buffer.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        return buffer
    return buffer + _recv_exactly(sock, length)


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    """Up to `count` bytes; fewer only when the peer closes first."""
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def header_of(response: bytes, name: str) -> str | None:
    head = response.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode("latin-1")
    return None


def body_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1]
