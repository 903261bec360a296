"""An HTTP/2 backend process for tests, built on the `h2` package:
`python -m tests.support.h2_backend [options]`.

Prior-knowledge h2c on a plain port, or TLS with ALPN `h2` (`--cert/--key`). Prints
`LISTENING <port>`. Every connection, request and RST_STREAM it sees is a JSON line in `--log`
(`event`: `connection`, `connection-closed`, `request`, `reset`; `conn` numbers connections
from 1), as is each wait of a response for the client's flow-control window (`flow-blocked`,
with the bytes `sent` so far) and each response sent whole (`response-sent`).

Paths: `/echo` answers the request body; `/bytes/N` streams N bytes in 16 KiB DATA frames, each
sent as the client's window allows; `/trailers` answers `hello` with trailers `grpc-status: 0`
and `grpc-message: all good`; `/slow?seconds=S` waits first; `/hold` never answers (until the
client resets the stream); `/stall` never answers nor reads its request body (no window
updates: `stall-progress` events say how much arrived); anything else answers JSON describing
the request (method, path, authority, scheme, headers, body length, connection and stream
numbers).

Knobs: `--max-streams N` (SETTINGS_MAX_CONCURRENT_STREAMS), `--goaway-after N` (after the N-th
request on a connection, GOAWAY naming it as the last stream: later streams are never answered;
the connection closes once the answered ones are done).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

FRAME = 16 * 1024


class Log:
    def __init__(self, path: str | None) -> None:
        self.path = path

    def write(self, **fields: Any) -> None:
        if self.path:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(fields) + "\n")


class Server(asyncio.Protocol):
    count = 0

    def __init__(self, args: argparse.Namespace, log: Log) -> None:
        self.args = args
        self.log = log
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.requests: dict[int, dict[str, Any]] = {}
        self.window_waiters: dict[int, asyncio.Future[None]] = {}
        self.answered = 0
        self.last_stream = 0  # after GOAWAY: streams above it are never answered
        self.tasks: set[asyncio.Task[None]] = set()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Server.count += 1
        self.number = Server.count
        self.transport = transport  # type: ignore[assignment]
        self.log.write(event="connection", conn=self.number)
        settings: dict[h2.settings.SettingCodes | int, int] = {}
        if self.args.max_streams:
            settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = self.args.max_streams
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.log.write(event="protocol-error", conn=self.number, error=str(exc))
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            self.handle(event)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.log.write(event="connection-closed", conn=self.number)
        for waiter in self.window_waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("lost"))
        for task in self.tasks:
            task.cancel()

    def handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = [(str(k), str(v)) for k, v in event.headers or []]
            self.requests[event.stream_id] = {"headers": headers, "body": bytearray()}
            self.answered += 1
            if self.args.goaway_after and self.answered == self.args.goaway_after:
                self.last_stream = event.stream_id
                self.conn.close_connection(last_stream_id=event.stream_id)
                # h2 closes its state on GOAWAY (python-hyper/h2#1181); a graceful server
                # finishes the streams it took, as Go's and gRPC's do.
                self.conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
        elif isinstance(event, h2.events.DataReceived):
            request = self.requests.get(event.stream_id)
            if request is not None:
                request["body"].extend(event.data)
                if dict(request["headers"]).get(":path") == "/stall":
                    # Never read: the sender must wait for a window that does not open.
                    received = len(request["body"])
                    self.log.write(event="stall-progress", stream=event.stream_id, got=received)
                    return
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id in self.requests:
                self.start(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.log.write(
                event="reset", conn=self.number, stream=event.stream_id, code=int(event.error_code)
            )
            self.requests.pop(event.stream_id, None)
            waiter = self.window_waiters.pop(event.stream_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionError("reset"))
        elif isinstance(event, h2.events.WindowUpdated):
            ids = [event.stream_id] if event.stream_id else list(self.window_waiters)
            for stream_id in ids:
                waiter = self.window_waiters.pop(stream_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    def start(self, stream_id: int) -> None:
        if self.last_stream and stream_id > self.last_stream:
            return  # after our GOAWAY: never processed
        task = asyncio.get_running_loop().create_task(self.respond(stream_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def respond(self, stream_id: int) -> None:
        request = self.requests[stream_id]
        headers = dict(request["headers"])
        path = headers.get(":path", "/")
        split = urlsplit(path)
        self.log.write(
            event="request",
            conn=self.number,
            stream=stream_id,
            method=headers.get(":method"),
            path=path,
            headers=request["headers"],
            body_len=len(request["body"]),
        )
        try:
            if split.path == "/hold":
                await asyncio.sleep(3600)
            if split.path.startswith("/slow"):
                seconds = float(parse_qs(split.query).get("seconds", ["0"])[0])
                await asyncio.sleep(seconds)
            if self.args.delay:
                await asyncio.sleep(self.args.delay)
            if split.path == "/echo":
                await self.send(stream_id, 200, bytes(request["body"]), "application/octet-stream")
            elif split.path.startswith("/bytes/"):
                size = int(split.path.rsplit("/", 1)[1])
                await self.send(stream_id, 200, b"x" * size, "application/octet-stream", False)
            elif split.path == "/trailers":
                await self.send(
                    stream_id,
                    200,
                    b"hello",
                    "text/plain",
                    False,
                    [("grpc-status", "0"), ("grpc-message", "all good")],
                )
            else:
                described = {
                    "method": headers.get(":method"),
                    "path": path,
                    "authority": headers.get(":authority"),
                    "scheme": headers.get(":scheme"),
                    "headers": request["headers"],
                    "body_len": len(request["body"]),
                    "conn": self.number,
                    "stream": stream_id,
                }
                await self.send(stream_id, 200, json.dumps(described).encode(), "application/json")
        except (ConnectionError, h2.exceptions.StreamClosedError):
            return
        finally:
            self.requests.pop(stream_id, None)
            if self.last_stream and not self.requests and self.transport is not None:
                self.transport.close()

    async def send(
        self,
        stream_id: int,
        status: int,
        body: bytes,
        content_type: str,
        with_length: bool = True,
        trailers: list[tuple[str, str]] | None = None,
    ) -> None:
        head = [(":status", str(status)), ("content-type", content_type), ("server", "h2-test")]
        if with_length:
            head.append(("content-length", str(len(body))))
        self.conn.send_headers(stream_id, head, end_stream=not body and not trailers)
        self.flush()
        view = memoryview(body)
        while view:
            window = self.conn.local_flow_control_window(stream_id)
            if window <= 0:  # the client's window is shut: it takes no more for now
                sent = len(body) - len(view)
                self.log.write(event="flow-blocked", stream=stream_id, sent=sent)
                waiter = asyncio.get_running_loop().create_future()
                self.window_waiters[stream_id] = waiter
                await waiter
                continue
            size = min(window, FRAME, self.conn.max_outbound_frame_size, len(view))
            last = size == len(view) and not trailers
            self.conn.send_data(stream_id, bytes(view[:size]), end_stream=last)
            self.flush()
            view = view[size:]
            await asyncio.sleep(0)
        if trailers:
            self.conn.send_headers(stream_id, trailers, end_stream=True)
            self.flush()
        self.log.write(event="response-sent", stream=stream_id, size=len(body))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="h2-backend")
    parser.add_argument("--log")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--max-streams", type=int, default=0)
    parser.add_argument("--goaway-after", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        context.set_alpn_protocols(["h2"])
    log = Log(args.log)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Server(args, log), "127.0.0.1", args.port, ssl=context
    )
    port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
