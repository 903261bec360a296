"""A real nats-server for tests, and a small synchronous NATS client to drive it.

The client speaks the NATS text protocol directly so tests can publish Gorouter messages and watch
subjects without an event loop of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.ports import free_port
from tests.support.waiting import wait_until


def nats_server_binary() -> str:
    binary = os.environ.get("NATS_SERVER_BINARY") or shutil.which("nats-server")
    if not binary:
        raise RuntimeError("nats-server not found: run `make install`, or set NATS_SERVER_BINARY")
    return binary


class NatsServer:
    """A nats-server process on an ephemeral loopback port; restartable on the same port."""

    def __init__(
        self,
        user: str = "",
        password: str = "",
        tls: tuple[str, str] | None = None,
        cluster: tuple[int, list[int]] | None = None,
        port: int = 0,
    ) -> None:
        self.user = user
        self.password = password
        self.tls = tls  # (certificate file, key file): clients must speak TLS
        self.cluster = cluster  # (this node's cluster port, the other nodes' cluster ports)
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="nats-"))

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"NatsServer(port={self.port}, {state})"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        port = str(self.port) if self.port else "-1"  # -1: nats-server picks a free port
        args = [
            nats_server_binary(),
            "-a",
            "127.0.0.1",
            "-p",
            port,
            "--ports_file_dir",
            str(self._dir),
        ]
        if self.user:
            args += ["--user", self.user, "--pass", self.password]
        if self.tls:
            args += ["--tls", "--tlscert", self.tls[0], "--tlskey", self.tls[1]]
        if self.cluster:
            own, others = self.cluster
            routes = ",".join(f"nats://127.0.0.1:{port}" for port in others)
            args += ["--cluster_name", "tests", "--cluster", f"nats://127.0.0.1:{own}"]
            args += ["--routes", routes]
        log = open(self._dir / "nats.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        ports_file = self._dir / f"{Path(args[0]).name}_{self.process.pid}.ports"
        info = wait_until(lambda: _read_json(ports_file), timeout=10, what="nats-server ports file")
        self.port = int(info["nats"][0].rsplit(":", 1)[1])
        wait_until(self._accepts, timeout=10, what=f"nats-server on {self.port}")

    def _accepts(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the server hangs with its sockets open, as a wedged node does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def cleanup(self) -> None:
        if self.process is not None:
            self.thaw()  # a frozen server cannot take SIGTERM
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


class NatsCluster:
    """Three nats-server nodes routed to each other on loopback, as a production cluster is."""

    def __init__(self, size: int = 3) -> None:
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            NatsServer(
                cluster=(port, [other for other in cluster_ports if other != port]),
                port=free_port(),
            )
            for port in cluster_ports
        ]

    def __repr__(self) -> str:
        return f"NatsCluster({self.nodes!r})"

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        # Routed: a message published on the last node reaches a subscriber on the first.
        with NatsClient(self.nodes[0].port) as first, NatsClient(self.nodes[-1].port) as last:
            inbox = first.subscribe("cluster.ready")

            def routed() -> bool:
                last.publish("cluster.ready", b"?")
                return not inbox.empty()

            wait_until(routed, timeout=15, interval=0.1, what="nats cluster routes")

    def node_on(self, port: int) -> NatsServer:
        return next(node for node in self.nodes if node.port == port)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Message:
    subject: str
    reply: str
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


class NatsClient:
    """A minimal blocking NATS client: publish, subscribe into a queue, request/reply."""

    def __init__(self, port: int, user: str = "", password: str = "") -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._file = self._sock.makefile("rb")
        self._lock = threading.Lock()
        self._subs: dict[int, queue.Queue[Message]] = {}
        self._next_sid = 1
        self._pong = threading.Event()
        info = self._file.readline()
        if not info.startswith(b"INFO "):
            raise RuntimeError(f"unexpected greeting from nats-server: {info!r}")
        connect: dict[str, Any] = {"verbose": False, "pedantic": False, "name": "tests"}
        if user:
            connect.update(user=user, **{"pass": password})
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join(timeout=5)
        self._file.close()

    def __enter__(self) -> NatsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, data: bytes) -> None:
        with self._lock:
            self._sock.sendall(data)

    def publish(self, subject: str, data: bytes | str | dict[str, Any], reply: str = "") -> None:
        if isinstance(data, dict):
            data = json.dumps(data)
        if isinstance(data, str):
            data = data.encode()
        head = (
            f"PUB {subject} {reply} {len(data)}\r\n" if reply else f"PUB {subject} {len(data)}\r\n"
        )
        self._send(head.encode() + data + b"\r\n")

    def subscribe(self, subject: str) -> queue.Queue[Message]:
        with self._lock:
            sid = self._next_sid
            self._next_sid += 1
            inbox: queue.Queue[Message] = queue.Queue()
            self._subs[sid] = inbox
        self._send(f"SUB {subject} {sid}\r\n".encode())
        self.flush()
        return inbox

    def request(self, subject: str, data: bytes | str = b"", timeout: float = 5.0) -> Message:
        inbox_subject = f"_INBOX.tests.{os.getpid()}.{self._next_sid}"
        inbox = self.subscribe(inbox_subject)
        self.publish(subject, data, reply=inbox_subject)
        return inbox.get(timeout=timeout)

    def flush(self, timeout: float = 5.0) -> None:
        """Round-trip a PING so everything sent before has reached the server."""
        self._pong.clear()
        self._send(b"PING\r\n")
        if not self._pong.wait(timeout):
            raise TimeoutError("nats-server did not answer PING")

    def _read_loop(self) -> None:
        try:
            while True:
                line = self._file.readline()
                if not line:
                    return
                if line.startswith(b"MSG "):
                    parts = line.split()
                    subject, sid = parts[1].decode(), int(parts[2])
                    reply = parts[3].decode() if len(parts) == 5 else ""
                    size = int(parts[-1])
                    payload = self._file.read(size + 2)[:size]
                    inbox = self._subs.get(sid)
                    if inbox is not None:
                        inbox.put(Message(subject, reply, payload))
                elif line.startswith(b"PING"):
                    self._send(b"PONG\r\n")
                elif line.startswith(b"PONG"):
                    self._pong.set()
        except OSError:
            return


def register_message(
    port: int,
    uris: list[str],
    host: str = "127.0.0.1",
    **fields: Any,
) -> dict[str, Any]:
    """A `router.register` body in Gorouter's README shape."""
    message: dict[str, Any] = {"host": host, "port": port, "uris": uris}
    message.update(fields)
    return message
