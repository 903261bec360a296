"""Gorouter's routing-table sharding by isolation segment."""

from __future__ import annotations

from typing import Literal

ShardingMode = Literal["all", "segments", "shared-and-segments"]


def is_served(segment: str, mode: ShardingMode, segments: frozenset[str]) -> bool:
    """Whether this router serves an endpoint in `segment` ("" is the shared segment).

    - `all`: every endpoint;
    - `segments`: only endpoints in the configured segments;
    - `shared-and-segments`: the shared segment plus the configured ones.
    Endpoints outside are ignored on register and unregister alike, as in Gorouter.
    """
    if mode == "all":
        return True
    if segment in segments:
        return True
    return mode == "shared-and-segments" and segment == ""
