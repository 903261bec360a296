"""Real nats-servers (one, or a routed cluster) for tests and benchmarks, and a small
synchronous NATS client to drive them.

The servers start through tests/support/launcher.py, on 127.0.0.1 only. The client speaks the
NATS text protocol directly so tests and benchmarks can publish Gorouter messages and watch
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
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.launcher import Process, ProcessGroup
from tests.support.ports import free_port, is_listening
from tests.support.processes import tcp_peer_ports
from tests.support.waiting import wait_until

START_TIMEOUT = 15.0


def nats_server_binary() -> str:
    binary = os.environ.get("NATS_SERVER_BINARY") or shutil.which("nats-server")
    if not binary:
        raise RuntimeError("nats-server not found: run `make install`, or set NATS_SERVER_BINARY")
    return binary


class NatsServer:
    """A nats-server process on a loopback port (an ephemeral one unless `port` is given);
    restartable on the same port. With `group`, it starts among the group's processes and logs
    in its dir; otherwise in a temp dir of its own, which `cleanup()` removes."""

    def __init__(
        self,
        user: str = "",
        password: str = "",
        tls: tuple[str, str] | None = None,
        cluster: tuple[int, list[int]] | None = None,
        port: int = 0,
        name: str = "nats-server",
        group: ProcessGroup | None = None,
        cluster_name: str = "tests",
        index: int = 0,
        settings: str = "",
    ) -> None:
        self.user = user
        self.password = password
        self.tls = tls  # (certificate file, key file): clients must speak TLS
        self.cluster = cluster  # (this node's cluster port, the other nodes' cluster ports)
        self.cluster_name = cluster_name
        self.port = port
        self.name = name
        self.index = index  # its place in a cluster
        self.settings = settings  # a configuration file's text, for what has no flag
        self.process: Process | None = None
        self.frozen = False
        self.restarts = 0
        self._own_dir = group is None
        self._dir = Path(tempfile.mkdtemp(prefix="nats-")) if group is None else group.workdir
        self.group = group if group is not None else ProcessGroup(self._dir)

    def __repr__(self) -> str:
        state = "frozen" if self.frozen else "running" if self.is_running() else "stopped"
        return f"NatsServer({self.name!r}, port={self.port}, {state})"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        """Running and not frozen: a client can expect answers from it."""
        return self.is_running() and not self.frozen

    def argv(self) -> list[str]:
        port = str(self.port) if self.port else "-1"  # -1: nats-server picks a free port
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", port]
        args += ["--ports_file_dir", str(self._dir)]
        if self.settings:
            config = self._dir / f"{self.name}.conf"
            config.write_text(self.settings)
            args += ["-c", str(config)]
        if self.user:
            args += ["--user", self.user, "--pass", self.password]
        if self.tls:
            args += ["--tls", "--tlscert", self.tls[0], "--tlskey", self.tls[1]]
        if self.cluster:
            own, others = self.cluster
            routes = ",".join(f"nats://127.0.0.1:{port}" for port in others)
            args += ["--server_name", f"{self.cluster_name}-{self.name}"]
            args += ["--cluster_name", self.cluster_name, "--cluster", f"nats://127.0.0.1:{own}"]
            args += ["--routes", routes]
        return args

    def start(self) -> None:
        """Start it and return once it accepts clients."""
        args = self.argv()
        process = self.process = self.group.start(self.name, args)
        self.frozen = False
        ports_file = self._dir / f"{Path(args[0]).name}_{process.pid}.ports"

        def listening() -> Any:
            process.check_running()
            return _read_json(ports_file)

        what = f"{self.name}'s ports file (log {process.log_path})"
        info = wait_until(listening, timeout=START_TIMEOUT, what=what)
        self.port = int(info["nats"][0].rsplit(":", 1)[1])
        wait_until(
            lambda: process.check_running() and is_listening(self.port),
            timeout=START_TIMEOUT,
            what=f"{self.name} on {self.port}",
        )

    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running()

    def stop(self) -> None:
        if self.process is None:
            return
        self.thaw()  # a frozen server cannot take SIGTERM
        self.group.stop(self.process, timeout=10)
        self.process = None

    def restart(self) -> None:
        """Stop (or, if killed, just start) it again on the same port."""
        self.stop()
        self.start()
        self.restarts += 1

    def freeze(self) -> None:
        """SIGSTOP: the server hangs with its sockets open, as a wedged node does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.process is not None and self.frozen and self.process.is_running():
            self.process.send_signal(signal.SIGCONT)
        self.frozen = False

    def kill(self) -> None:
        """kill -9, as a crashed VM's server goes: no goodbye to clients or routes."""
        assert self.process is not None
        self.thaw()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.stop()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)


class NatsCluster:
    """nats-server nodes routed to each other on loopback, as a production cluster is. A killed
    node comes back on its own ports, so clients that know the original list (routerd's
    `nats.hosts`) can reconnect to it."""

    def __init__(
        self, size: int = 3, group: ProcessGroup | None = None, name: str = "tests"
    ) -> None:
        cluster_ports = [free_port() for _ in range(size)]
        self.nodes = [
            NatsServer(
                cluster=(port, [other for other in cluster_ports if other != port]),
                port=free_port(),
                name=f"nats-{index}",
                group=group,
                cluster_name=name,
                index=index,
            )
            for index, port in enumerate(cluster_ports)
        ]

    def __repr__(self) -> str:
        return f"NatsCluster({self.nodes!r})"

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

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

    def node_serving(self, pid: int) -> NatsServer | None:
        """The node process `pid` (routerd's supervisor) holds a connection to, if any."""
        peers = tcp_peer_ports(pid)
        return next((node for node in self.nodes if node.port in peers), None)

    def thaw_all(self) -> None:
        for node in self.nodes:
            node.thaw()

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
