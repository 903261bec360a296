"""Whether the NATS link is proven alive: a decision from timestamps, no I/O.

Theory of operation. nats-py's own view ("connected") is not proof: a frozen server keeps the TCP
connection open, and a client whose read loop died still says connected. So the link proves itself:
the supervisor sends a probe to its own inbox every `ping_interval / PROBES_PER_INTERVAL` and counts
anything that arrives (a probe echo, a registration, nats-py's inbound message count moving) as
progress. While progress is fresher than `ping_interval` the link is PROVEN; once it is older (more
than two probes outstanding), the link is UNPROVEN: pruning is suspended exactly as for a
disconnect, and the client is rebuilt against the next server. Every moment the link is not proven
is latched as an outage, so the pruner's next cycle after recovery freshens every route instead of
pruning what could not be heard.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec

# Four probes per interval: an idle, healthy link always has proof well inside the interval.
PROBES_PER_INTERVAL: Final = 4


class LinkState(enum.Enum):
    CONNECTING = "connecting"  # no connection made yet, or the client is being rebuilt
    PROVEN = "connected"  # something arrived within the ping interval
    UNPROVEN = "unproven"  # nats-py says connected, but nothing arrived within the interval
    DISCONNECTED = "disconnected"  # nats-py lost the connection and is reconnecting
    CLOSED = "closed"  # routerd closed it on shutdown


class IllegalLinkTransition(Exception):
    def __init__(self, current: LinkState, target: LinkState) -> None:
        super().__init__(f"NATS link cannot go from {current.value} to {target.value}")


_ANY_OPEN: Final = frozenset(
    {LinkState.CONNECTING, LinkState.PROVEN, LinkState.UNPROVEN, LinkState.DISCONNECTED}
)
TRANSITIONS: Final[dict[LinkState, frozenset[LinkState]]] = {
    LinkState.CONNECTING: _ANY_OPEN | {LinkState.CLOSED},
    LinkState.PROVEN: _ANY_OPEN | {LinkState.CLOSED},
    LinkState.UNPROVEN: _ANY_OPEN | {LinkState.CLOSED},
    LinkState.DISCONNECTED: _ANY_OPEN | {LinkState.CLOSED},
    LinkState.CLOSED: frozenset({LinkState.CLOSED}),
}


class Verdict(msgspec.Struct, frozen=True):
    state: LinkState
    # The client must be closed and made anew (silent while "connected", or closed under us).
    rebuild: bool = False


class Liveness:
    """The link's state from what the client reports and when something last arrived."""

    def __init__(self, ping_interval: float, now: float) -> None:
        self.ping_interval = ping_interval
        self.state = LinkState.CONNECTING
        self.last_progress = now
        self.connected_at: float | None = None
        self._outage = False

    def __repr__(self) -> str:
        return (
            f"Liveness({self.state.value}, ping_interval={self.ping_interval}, "
            f"outage_latched={self._outage})"
        )

    @property
    def probe_interval(self) -> float:
        return self.ping_interval / PROBES_PER_INTERVAL

    @property
    def is_proven(self) -> bool:
        return self.state is LinkState.PROVEN

    def move(self, target: LinkState) -> None:
        if target not in TRANSITIONS[self.state]:
            raise IllegalLinkTransition(self.state, target)
        self.state = target
        if target is not LinkState.PROVEN:
            self._outage = True

    def progress(self, now: float) -> None:
        """Something arrived from the server: the read loop runs and the server answers."""
        self.last_progress = max(self.last_progress, now)

    def connected(self, now: float) -> None:
        """A (re)connection completed its handshake with the server: that is proof too."""
        self.connected_at = now
        self.progress(now)
        self.move(LinkState.PROVEN)

    def seconds_silent(self, now: float) -> float:
        return max(0.0, now - self.last_progress)

    def check(self, now: float, *, client_connected: bool, client_closed: bool) -> Verdict:
        """The state now, and whether the client must be rebuilt. Moves the state."""
        if self.state in (LinkState.CONNECTING, LinkState.CLOSED):
            return Verdict(self.state)
        if client_closed:
            # nats-py gave up (it closes on some server errors): only a new client recovers.
            self.move(LinkState.CONNECTING)
            return Verdict(self.state, rebuild=True)
        if not client_connected:
            self.move(LinkState.DISCONNECTED)  # nats-py is reconnecting by itself
            return Verdict(self.state)
        if self.seconds_silent(now) > self.ping_interval:
            self.move(LinkState.UNPROVEN)
            return Verdict(self.state, rebuild=True)
        self.move(LinkState.PROVEN)
        return Verdict(self.state)

    def take_outage(self) -> bool:
        """Whether the link was not proven at any moment since the last call (for the pruner)."""
        outage, self._outage = self._outage, not self.is_proven
        return outage
