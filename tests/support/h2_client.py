"""An HTTP/2 client over real TLS for tests, on the `h2` package: well-behaved requests, and
the raw frames of a misbehaving client (the connection's `sock` and `h2` are both exposed)."""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


@dataclass
class H2Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    trailers: dict[str, str] = field(default_factory=dict)
    reset: int | None = None  # RST_STREAM error code, if the router reset the stream
    # Informational (1xx) heads before the response, in order: (status, fields).
    interim: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    ended: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def tls_socket(
    port: int,
    alpn: list[str],
    timeout: float = 10,
    proxy_header: bytes = b"",
    client: tuple[Path, Path] | None = None,
) -> ssl.SSLSocket:
    """A TLS connection offering `alpn`, after a PROXY header when one is given, presenting
    the client certificate and key files `client` when given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    if client is not None:
        context.load_cert_chain(*client)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw.sendall(proxy_header)
    return context.wrap_socket(raw, server_hostname="localhost")


class H2Client:
    """One HTTP/2 connection to the router's TLS port."""

    def __init__(
        self,
        port: int,
        timeout: float = 10,
        window: int | None = None,
        proxy_header: bytes = b"",
        client: tuple[Path, Path] | None = None,
    ) -> None:
        self.sock = tls_socket(port, ["h2"], timeout, proxy_header, client)
        assert self.sock.selected_alpn_protocol() == "h2"
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.h2.initiate_connection()
        if window is not None:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.send_pending()
        self.responses: dict[int, H2Response] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.remote_settings_seen = False

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send_pending(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def start(
        self,
        method: str,
        path: str,
        host: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        end: bool = True,
    ) -> int:
        """Send a request (its body too when it fits the window); returns its stream id."""
        stream_id = self.h2.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "https"), (":authority", host)]
        fields += headers or []
        encoded = [(k.encode(), v.encode()) for k, v in fields]
        self.h2.send_headers(stream_id, encoded, end_stream=end and not body)
        self.responses[stream_id] = H2Response()
        if body:
            self.send_body(stream_id, body, end=end)
        self.send_pending()
        return stream_id

    def send_body(self, stream_id: int, body: bytes, end: bool = True) -> None:
        """Send `body` as the window allows, reading the router's frames meanwhile."""
        offset = 0
        while offset < len(body):
            room = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if room <= 0:
                self.send_pending()
                self.read_once()
                continue
            self.h2.send_data(stream_id, body[offset : offset + room])
            offset += room
        if end:
            self.h2.end_stream(stream_id)
        self.send_pending()

    def read_once(self) -> bool:
        """Read and handle what arrives; False once the router closed the connection."""
        try:
            data = self.sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return False
        for event in events:
            self._handle(event)
        self.send_pending()
        return True

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.InformationalResponseReceived):
            fields = {name.decode(): value.decode() for name, value in event.headers}
            status = int(fields.pop(":status"))
            self.responses[event.stream_id].interim.append((status, fields))
        elif isinstance(event, h2.events.ResponseReceived):
            response = self.responses[event.stream_id]
            for name, value in event.headers:
                if name == b":status":
                    response.status = int(value)
                else:
                    response.headers[name.decode()] = value.decode()
        elif isinstance(event, h2.events.DataReceived):
            self.responses[event.stream_id].body += event.data
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            trailers = self.responses[event.stream_id].trailers
            trailers.update((k.decode(), v.decode()) for k, v in event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            self.responses[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self.responses:
                self.responses[event.stream_id].reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.remote_settings_seen = True

    def wait(self, stream_id: int, timeout: float = 10) -> H2Response:
        """Until the stream's response has ended (or was reset)."""
        deadline = time.monotonic() + timeout
        response = self.responses[stream_id]
        while not response.ended and response.reset is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream {stream_id}: no complete response in {timeout}s")
            if not self.read_once():
                raise ConnectionError(f"connection closed before stream {stream_id} ended")
        return response

    def request(self, method: str, path: str, host: str, **kwargs: object) -> H2Response:
        return self.wait(self.start(method, path, host, **kwargs))  # type: ignore[arg-type]

    def read_until_closed(self, timeout: float = 10) -> None:
        """Read until the router closes the connection (after its GOAWAY, for instance)."""
        deadline = time.monotonic() + timeout
        while self.read_once():
            if time.monotonic() > deadline:
                raise TimeoutError(f"connection still open after {timeout}s")
