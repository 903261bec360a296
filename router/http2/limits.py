"""What one client's HTTP/2 connection may cost the router, and the budget that enforces the
rates: the settings the router advertises, and a token bucket per kind of frame a client can
send cheaply and make the router work for (RST_STREAM after HEADERS: CVE-2023-44487 "rapid
reset"; SETTINGS, PING, WINDOW_UPDATE, PRIORITY and empty DATA floods). A connection over a
budget is closed with GOAWAY ENHANCE_YOUR_CALM. Pure logic: the caller passes the clock.
"""

from __future__ import annotations

from typing import Final

# Streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS): Go's
# server's default, so what Gorouter advertises; h2 refuses more with a protocol error.
MAX_CONCURRENT_STREAMS: Final = 250
# Request body bytes one stream may have buffered in the router (its receive window):
# HTTP/2's initial window, so a client that sends faster than a backend reads waits.
STREAM_WINDOW: Final = 65_535
# The connection's receive window, shared by its streams: room for a few uploads at once,
# and the bound on request-body memory per connection.
CONNECTION_WINDOW: Final = 1 << 20
# Bytes queued for a client that does not read; past this, it is cut. Response data is only
# written while the socket takes it, so only frames a flooding client makes the router answer
# (SETTINGS and PING acknowledgements) can pile up this far.
OUTBOUND_LIMIT: Final = 4 << 20

# Client stream resets: a burst, then a steady rate per second. A browser cancelling
# navigations resets a handful; an attacker, thousands a second.
RESET_BURST: Final = 200
RESET_RATE: Final = 100.0
# Frames that cost the router work and carry no request: SETTINGS, PING, WINDOW_UPDATE,
# PRIORITY, empty DATA without END_STREAM.
CONTROL_BURST: Final = 1000
CONTROL_RATE: Final = 500.0


class Budget:
    """A token bucket: `take(now)` is False once the client has spent more than `burst` plus
    `rate` per second since it started."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.last = now

    def __repr__(self) -> str:
        return f"Budget({self.tokens:.0f}/{self.burst:.0f}, {self.rate}/s)"

    def take(self, now: float) -> bool:
        elapsed = now - self.last
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


__all__ = [
    "CONNECTION_WINDOW",
    "CONTROL_BURST",
    "CONTROL_RATE",
    "MAX_CONCURRENT_STREAMS",
    "OUTBOUND_LIMIT",
    "RESET_BURST",
    "RESET_RATE",
    "STREAM_WINDOW",
    "Budget",
]
