"""The supervisor↔worker control channel: one JSON object per line over a socketpair.

Supervisor → worker: `start` (config, table paths and health), `ping`, `reload` (new config),
`health` (`healthy`: what the router answers load balancers' health checks on its own ports),
`stop` (finish in-flight requests within `timeout` seconds, then exit).
Worker → supervisor: `ready` (serving), `pong`, `stopped`, `prune` (an endpoint of route
`host` + `path` at `address` failed to connect or to set up TLS: remove it from that route,
as Gorouter prunes a failed TLS endpoint, until it registers again; `error` says why).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

START: Final = "start"
PING: Final = "ping"
PONG: Final = "pong"
READY: Final = "ready"
RELOAD: Final = "reload"
HEALTH: Final = "health"
STOP: Final = "stop"
STOPPED: Final = "stopped"
PRUNE: Final = "prune"

MAX_LINE: Final = 1 << 20


def encode(op: str, **fields: Any) -> bytes:
    return orjson.dumps({"op": op, **fields}, option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> dict[str, Any] | None:
    """A message, or None if the line is not one (logged by the caller)."""
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        return None
    return message
