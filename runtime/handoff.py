"""Connections accepted by the supervisor on behalf of a worker that is down, handed to a live one.

Theory of operation. Each worker owns one SO_REUSEPORT listening socket (per port) and the
kernel hashes every new connection to one socket of the group. The supervisor keeps its copy of
every socket so that a respawned worker serves the very socket its predecessor did, and the port
stays bound if every worker is down. But a dead worker's socket stays in the group, so the kernel
goes on queueing a share of new connections on it, and they would wait out the respawn backoff
(up to BACKOFF_MAX). Closing the socket instead would reset whatever is queued on it, and what
arrives between the last accept and the close.

So, from the moment a worker is found dead until its replacement says it is ready, a `Standin`
in the supervisor accepts on that worker's sockets and passes each connection, as a file
descriptor (SCM_RIGHTS), to a live worker over that worker's handoff channel: a SOCK_SEQPACKET
socketpair, one message per batch, `kind` (which port) as the payload. The live worker serves it
as if it had accepted it. Nothing is closed, so nothing is reset; the worker in backoff owns no
part of the accept load. With no live worker at all the standin does not accept: connections
wait in the kernel's backlog for the first worker back, and the port stays bound.

A worker that dies with connections still unread on its channel does not lose them: the
supervisor keeps the worker's end of the channel open too, and reads them back (`drain`) to
pass them on.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Sequence
from typing import Final

from runtime.log_tally import LogTally
from runtime.logs import EventLog

log = EventLog("vcap.gorouter.supervisor")

HTTP: Final = b"h"  # a connection to `port`
TLS: Final = b"t"  # a connection to `ssl_port`
KINDS: Final = (HTTP, TLS)
# Well under the kernel's SCM_MAX_FD (253); also the most taken per readiness event.
MAX_FDS: Final = 64
# When every live worker's channel is full, try again after this long (connections stay queued).
RETRY_FULL: Final = 0.01
# Out of descriptors itself, the supervisor tries again after this long.
SHORTAGE_PAUSE: Final = 0.1


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(supervisor end, worker end), both non-blocking."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    theirs.setblocking(False)
    return ours, theirs


def send_connections(channel: socket.socket, kind: bytes, conns: Sequence[socket.socket]) -> None:
    """One message carrying `conns`; raises BlockingIOError when full, OSError when gone."""
    socket.send_fds(channel, [kind], [conn.fileno() for conn in conns])


def receive_connections(
    channel: socket.socket,
) -> tuple[bytes, list[socket.socket], bool] | None:
    """The next message: its kind, its connections, and whether some were lost (MSG_CTRUNC:
    the receiver was out of file descriptors). None when there is none; raises EOFError at end.
    """
    try:
        kind, fds, flags, _ = socket.recv_fds(channel, 1, MAX_FDS)
    except (BlockingIOError, InterruptedError):
        return None
    if not kind and not fds:
        raise EOFError("handoff channel closed")
    conns = [socket.socket(fileno=fd) for fd in fds]
    return kind, conns, bool(flags & socket.MSG_CTRUNC)


class Standin:
    """Accepts on a down worker's sockets and hands the connections to live workers.

    `targets()` returns the channels of the workers that are ready now; they are tried in turn,
    so one full channel does not stop the others. Connections no channel can take yet are held
    (and accepting pauses) until one can; they are closed only by `close()`, at shutdown.
    """

    def __init__(
        self,
        index: int,
        sockets: Sequence[tuple[bytes, socket.socket]],
        targets: Callable[[], Sequence[socket.socket]],
        log_interval: float,
    ) -> None:
        self.index = index
        self.sockets = list(sockets)
        self.targets = targets
        self.handed_off = 0
        self._watching: list[int] = []
        self._held: list[tuple[bytes, list[socket.socket]]] = []
        self._retry: asyncio.TimerHandle | None = None
        self._active = False
        self._next = 0
        self._shortage = LogTally(
            log, "standin-accept-failed", "standin-accept-recovered", log_interval
        )

    def __repr__(self) -> str:
        return (
            f"Standin(worker={self.index}, active={self._active}, held={len(self._held)}, "
            f"handed_off={self.handed_off})"
        )

    @property
    def is_active(self) -> bool:
        return self._active

    def start(self) -> None:
        """Accept on the sockets (again); held connections go out first."""
        self._active = True
        self._try_again()

    def stop(self) -> None:
        """Stop accepting; connections already held still go out as soon as a worker takes them."""
        self._active = False
        self._unwatch()
        if self._retry is not None and not self._held:
            self._retry.cancel()
            self._retry = None

    def hold(self, kind: bytes, conns: list[socket.socket]) -> None:
        """Connections to pass on at the next chance (read back from a dead worker's channel)."""
        self._held.append((kind, conns))

    def flush(self) -> None:
        """Pass on what is held now, whether or not this standin is accepting."""
        if self._held and self._retry is None:
            self._try_again()

    def close(self) -> None:
        """At shutdown: stop, and close what is held (nobody is left to serve it)."""
        self.stop()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for _, conns in self._held:
            for conn in conns:
                conn.close()
        self._held.clear()

    def pass_on(self, kind: bytes, conns: list[socket.socket]) -> bool:
        """Send `conns` to a live worker and close ours; False if no channel took them."""
        targets = self.targets()
        for attempt in range(len(targets)):
            channel = targets[(self._next + attempt) % len(targets)]
            try:
                send_connections(channel, kind, conns)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                # That worker just died (its exit is being handled); try the next.
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ECONNREFUSED):
                    log.error("connection-handoff-failed", index=self.index, error=str(exc))
                continue
            self._next = (self._next + attempt + 1) % len(targets)
            for conn in conns:
                conn.close()  # the live worker has its own descriptor now
            self.handed_off += len(conns)
            return True
        return False

    def _watch(self) -> None:
        for kind, sock in self.sockets:
            fd = sock.fileno()
            if fd >= 0 and fd not in self._watching:
                sock.setblocking(False)  # accept() must never wait in the supervisor's loop
                asyncio.get_running_loop().add_reader(fd, self._on_readable, kind, sock)
                self._watching.append(fd)

    def _unwatch(self) -> None:
        for fd in self._watching:
            asyncio.get_running_loop().remove_reader(fd)
        self._watching.clear()

    def _on_readable(self, kind: bytes, sock: socket.socket) -> None:
        conns: list[socket.socket] = []
        short_of_fds = False
        while len(conns) < MAX_FDS:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if self._shortage.add(index=self.index, error=exc.strerror):
                        asyncio.get_running_loop().call_later(
                            self._shortage.interval, self._tick_shortage
                        )
                    short_of_fds = True
                    break
                continue  # this connection failed (ECONNABORTED and the like)
            conns.append(conn)
        if conns and not self.pass_on(kind, conns):
            self._held.append((kind, conns))
        if self._held or short_of_fds:
            # Accept no more until these are out; the rest wait in the kernel's backlog.
            self._unwatch()
            self._schedule(SHORTAGE_PAUSE if short_of_fds else RETRY_FULL)

    def _tick_shortage(self) -> None:
        if self._shortage.tick(index=self.index):
            asyncio.get_running_loop().call_later(self._shortage.interval, self._tick_shortage)

    def _schedule(self, delay: float) -> None:
        # With no live worker at all, nothing to retry: `start()` comes when one is ready.
        if self._retry is None and (self._active or self._held) and self.targets():
            self._retry = asyncio.get_running_loop().call_later(delay, self._try_again)

    def _try_again(self) -> None:
        self._retry = None
        while self._held and self.pass_on(*self._held[0]):
            self._held.pop(0)
        if self._held:
            self._schedule(RETRY_FULL)
        elif self._active:
            self._watch()
