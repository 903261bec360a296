"""Read-by-read bookkeeping of a client connection's incoming requests: which parsed heads pass
the wire rules, how much of an unfinished head has arrived, and which client deadline applies.
Pure logic on what the parser returned; the connection acts on the verdicts.

A keep-alive GET whose head arrives in one read smaller than `max_request_header_bytes` costs a
few comparisons: a head in such a read cannot be over the limit. Heads that came in several
reads, or after a body in the same read, are measured exactly (rules.head_size). The bytes of an
unfinished head are counted as they come, so that one sent byte by byte is refused once past the
limit and its slack, before the parser holds all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from router.client_deadlines import BODY, HEADER, NONE
from router.http1.rules import HEAD_SLACK, Limits, Refusal, head_too_large, refusal

# What a read means for the client deadline (client_deadlines.py).
DISARM: Final = NONE  # a head or body is complete: nothing is awaited from the client
START_HEADER: Final = HEADER  # a head has begun: read_header_timeout runs from now
HOLD_HEADER: Final = 10 + HEADER  # a head goes on arriving: its deadline keeps running
PUSH_BODY: Final = BODY  # a body is arriving: request_body_timeout runs again from now
_HEAD_END: Final = b"\r\n\r\n"


class Verdict:
    """What one read comes to: requests to serve, a refusal to answer after them (nothing
    after it is read), and the deadline to set.

    A class, not a NamedTuple: compiled, a class is built natively, where a NamedTuple's
    constructor runs as interpreted Python (one per read)."""

    def __init__(
        self, accepted: list[tuple[Any, Any]], refused: Refusal | None, deadline: int
    ) -> None:
        self.accepted = accepted
        self.refused = refused
        self.deadline = deadline

    def __repr__(self) -> str:
        return f"Verdict({len(self.accepted)} accepted, {self.refused!r}, {self.deadline})"


class Intake:
    """One connection's bookkeeping (see the module docstring)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.head_bytes = 0  # bytes of an unfinished head so far
        self.measure = False  # the next head must be measured exactly
        self.tail = b""  # the last bytes of the last partial read
        self.body: Any = None  # the request body still arriving, if any

    def __repr__(self) -> str:
        return f"Intake(head_bytes={self.head_bytes}, measure={self.measure})"

    def took(self, data: bytes, messages: Sequence[tuple[Any, Any]]) -> Verdict:
        """A read that completed `messages` (heads with their body readers)."""
        limits = self.limits
        big_read = len(data) >= limits.max_head_bytes
        measure = self.measure or big_read
        if self.body is not None and self.body.is_eof():
            self.body = None  # the last body ended in this read
        accepted: list[tuple[Any, Any]] = []
        payload: Any = None
        for msg, payload in messages:
            problem = refusal(msg, limits, measure)
            if problem is not None:
                self.body = None
                return Verdict(accepted, problem, DISARM)
            accepted.append((msg, payload))
            measure = big_read
        self.head_bytes = 0
        self.measure = False
        if not payload.at_eof():
            # Whatever follows a body in this read is uncounted: measure the next head.
            self.measure = True
            if not payload.is_eof():
                self.body = payload
                return Verdict(accepted, None, PUSH_BODY)
            return Verdict(accepted, None, DISARM)
        if not self._ends_a_head(data):
            # The read went on past a body-less request: the next head has begun. As in Go's
            # server, read_header_timeout runs from its first bytes.
            self.measure = True
            self.tail = data[-3:]
            return Verdict(accepted, None, START_HEADER)
        return Verdict(accepted, None, DISARM)

    def partial(self, data: bytes) -> Verdict:
        """A read that completed no request head: part of a head, or of a body."""
        body = self.body
        if body is not None:
            if not body.is_eof():
                return Verdict([], None, PUSH_BODY)
            # The body ended in this read; what followed it, if anything, is uncounted.
            self.body = None
            self.measure = True
            return Verdict([], None, DISARM)
        self.head_bytes += len(data)
        self.measure = True
        self.tail = (self.tail + data)[-3:]
        if self.head_bytes > self.limits.max_head_bytes + HEAD_SLACK:
            return Verdict([], head_too_large(), DISARM)
        return Verdict([], None, HOLD_HEADER)

    def _ends_a_head(self, data: bytes) -> bool:
        """Whether this read ends exactly where a head does (its blank line may have begun in
        the read before)."""
        if len(data) >= len(_HEAD_END):
            return data.endswith(_HEAD_END)
        return (self.tail + data).endswith(_HEAD_END)


__all__ = [
    "DISARM",
    "HOLD_HEADER",
    "Intake",
    "PUSH_BODY",
    "START_HEADER",
    "Verdict",
]
