"""A real backend process for tests: `python -m tests.support.backend [options]`.

Prints `LISTENING <port>` once it accepts connections. Modes:

- `http` (default): an aiohttp app. `GET /any/path` answers JSON describing what arrived (method,
  path, headers in order, body length and SHA-256, whether it was chunked). `/bytes/N` streams N
  bytes, `/status/N` answers N, `/slow?seconds=S` waits first, `/ws` is a WebSocket echo.
  `?echo-cookie=C` sets cookie C; each `?echo-header=Name:Value` adds that response header.
- `reset-after-body`: reads a request head and its Content-Length body, then resets the connection.
- `close-before-response`: reads a request head and closes without answering.
- `close-reused`: answers the first request on each connection and keeps it open, then closes
  without answering when a second request arrives on it (a deterministic keep-alive race).
- `record` (record_backend.py): logs every byte received, per connection, and each request a
  strict parser (llhttp) finds in them; answers `200 ok`, or a canned (often malformed) response
  for `/reply/<name>`.

With `--route-service-to PORT` the http mode acts as a route service: it sends each request back
through the router on PORT to its `X-CF-Forwarded-Url`, signature headers intact, and answers with
what came back plus `X-Route-Service: <name>`.

Knobs: `--delay` before every answer, `--keepalive-timeout` (idle close), `--close-after N`
requests per connection, `--log FILE` (one JSON line per request seen), TLS with `--cert/--key`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientSession, WSMsgType, web

from tests.support.record_backend import serve_recording

CHUNK = 64 * 1024


class Recorder:
    def __init__(self, path: str | None) -> None:
        self.path = path

    def record(self, **fields: Any) -> None:
        if self.path:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(fields) + "\n")


def build_app(args: argparse.Namespace, recorder: Recorder) -> web.Application:
    per_connection: dict[int, int] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        if args.route_service_to:
            return await route_service(request)
        conn = id(request.transport)
        per_connection[conn] = per_connection.get(conn, 0) + 1
        count = per_connection[conn]
        digest = hashlib.sha256()
        length = 0
        async for chunk in request.content.iter_chunked(CHUNK):
            digest.update(chunk)
            length += len(chunk)
        recorder.record(method=request.method, path=request.path_qs, body_len=length)
        delay = args.delay + float(
            request.query.get("seconds", "0") if "slow" in request.path else 0
        )
        if delay:
            await asyncio.sleep(delay)
        if request.path.startswith("/status/"):
            response: web.StreamResponse = web.Response(
                status=int(request.path.rsplit("/", 1)[1]), text=f"status from {args.name}"
            )
        elif request.path.startswith("/bytes/"):
            response = await stream_bytes(request, int(request.path.rsplit("/", 1)[1]))
        else:
            body = {
                "backend": args.name,
                "method": request.method,
                "path": request.path_qs,
                "raw_path": request.raw_path,
                "version": f"{request.version.major}.{request.version.minor}",
                "headers": [[k, v] for k, v in request.headers.items()],
                "body_len": length,
                "body_sha256": digest.hexdigest(),
                "chunked": request.headers.get("Transfer-Encoding", "").lower() == "chunked",
                "connection_requests": count,
            }
            response = web.json_response(body, headers={"X-Backend": args.name})
            if "echo-cookie" in request.query:
                response.headers["Set-Cookie"] = request.query["echo-cookie"]
            for line in request.query.getall("echo-header", []):
                name, _, value = line.partition(":")
                response.headers.add(name, value.strip())
        if args.close_after and count >= args.close_after:
            response.force_close()
        return response

    async def route_service(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        forwarded = request.headers.get("X-CF-Forwarded-Url", "")
        recorder.record(
            method=request.method,
            path=request.path_qs,
            forwarded_url=forwarded,
            signature=request.headers.get("X-CF-Proxy-Signature", ""),
            metadata=request.headers.get("X-CF-Proxy-Metadata", ""),
        )
        if args.delay:
            await asyncio.sleep(args.delay)
        url = urlsplit(forwarded)
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in ("host", "content-length", "connection", "transfer-encoding")
        }
        headers["Host"] = url.netloc
        target = f"http://127.0.0.1:{args.route_service_to}{url.path or '/'}"
        if url.query:
            target += f"?{url.query}"
        async with (
            ClientSession(auto_decompress=False) as session,
            session.request(
                request.method, target, headers=headers, data=body, allow_redirects=False
            ) as reply,
        ):
            payload = await reply.read()
            passed = {
                name: value
                for name, value in reply.headers.items()
                if name.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            passed["X-Route-Service"] = args.name
            return web.Response(status=reply.status, body=payload, headers=passed)

    async def stream_bytes(request: web.Request, total: int) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        if "chunked" in request.query:
            response.enable_chunked_encoding()
        else:
            response.content_length = total
        await response.prepare(request)
        block = b"x" * CHUNK
        sent = 0
        while sent < total:
            piece = block[: min(CHUNK, total - sent)]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response

    async def websocket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(f"echo: {msg.data}")
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application(client_max_size=0)
    app.router.add_get("/ws", websocket)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def serve_http(args: argparse.Namespace, sock: socket.socket, recorder: Recorder) -> None:
    runner = web.AppRunner(
        build_app(args, recorder),
        keepalive_timeout=args.keepalive_timeout,
        access_log=None,
        handle_signals=True,
    )
    await runner.setup()
    context = tls_context(args)
    site = web.SockSite(runner, sock, ssl_context=context)
    await site.start()
    announce(sock)
    await asyncio.Event().wait()


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(args.client_ca)
    return context


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    method, path = lines[0].split(" ")[:2]
    return method, path, body


async def serve_raw(args: argparse.Namespace, sock: socket.socket, recorder: Recorder) -> None:
    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        while True:
            request = await read_request(reader)
            if request is None:
                writer.close()
                return
            method, path, body = request
            served += 1
            recorder.record(
                method=method, path=path, body_len=len(body), connection_requests=served
            )
            if args.mode == "close-reused" and served == 1:
                payload = f"served by {args.name}".encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
                )
                await writer.drain()
                continue
            if args.mode == "reset-after-body":
                # SO_LINGER with a zero timeout turns close() into a TCP RST.
                raw = writer.get_extra_info("socket")
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()
            return

    server = await asyncio.start_server(on_connection, sock=sock)
    announce(sock)
    async with server:
        await server.serve_forever()


def announce(sock: socket.socket) -> None:
    print(f"LISTENING {sock.getsockname()[1]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default=f"backend-{os.getpid()}")
    parser.add_argument(
        "--mode",
        choices=["http", "reset-after-body", "close-before-response", "close-reused", "record"],
        default="http",
    )
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--keepalive-timeout", type=float, default=75.0)
    parser.add_argument("--close-after", type=int, default=0)
    parser.add_argument("--log")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--client-ca")
    parser.add_argument("--route-service-to", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)
    recorder = Recorder(args.log)
    serve = {"http": serve_http, "record": serve_recording}.get(args.mode, serve_raw)
    try:
        asyncio.run(serve(args, sock, recorder))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
