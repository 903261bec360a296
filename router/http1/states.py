"""A client connection's states and the moves between them (connection.py).

The states:
  IDLE      no request in flight, nothing of the next one here; `frontend_idle_timeout` runs
  READING   part of a request head has arrived; `read_header_timeout` runs from its first read
  EXCHANGE  a request is being served (exchange.py); its body may still be arriving, under
            `request_body_timeout`, pushed back by every read (and stopped while the router
            itself has paused reading because the body buffer is full)
  TUNNEL    after a backend's 101: bytes pass both ways untouched until either side closes
  CLOSING   the last response is written: what the client still sends is read and dropped
            for a moment (so that closing does not reset the response away), then it closes
  CLOSED    the transport is gone
"""

from __future__ import annotations

import enum
from typing import Final


class State(enum.Enum):
    IDLE = "idle"
    READING = "reading"
    EXCHANGE = "exchange"
    TUNNEL = "tunnel"
    CLOSING = "closing"
    CLOSED = "closed"

    # Enum hashes a member by its name, in Python; every move (a few per request) looks its
    # state up in TRANSITIONS. Members are singletons compared by identity, so identity's
    # hash (in C) is as correct.
    __hash__ = object.__hash__


TRANSITIONS: Final = {
    State.IDLE: frozenset({State.READING, State.EXCHANGE, State.CLOSING, State.CLOSED}),
    State.READING: frozenset({State.IDLE, State.EXCHANGE, State.CLOSING, State.CLOSED}),
    State.EXCHANGE: frozenset(
        {State.IDLE, State.READING, State.EXCHANGE, State.TUNNEL, State.CLOSING, State.CLOSED}
    ),
    State.TUNNEL: frozenset({State.CLOSED}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


class IllegalTransition(Exception):
    """A bug: the connection was asked to move where its state table does not allow."""


__all__ = ["TRANSITIONS", "IllegalTransition", "State"]
