"""What a shard of the shared table holds: pools and their endpoints, encoded with msgpack.

Records are not tracked by the garbage collector (`gc=False`): they hold no cycles, and a worker
holding 100k routes would otherwise spend long pauses scanning them.

Field order matters: records are arrays, and trailing fields at their defaults are omitted, so the
fields that are usually empty come last. Heartbeats that change nothing re-encode nothing, so
nothing that changes on every heartbeat (timestamps) lives here.
"""

from __future__ import annotations

from typing import Final

import msgspec

from registry.backend_host import host_port


class EndpointRecord(msgspec.Struct, frozen=True, array_like=True, omit_defaults=True, gc=False):
    slot: int
    host: str
    port: int
    stale_threshold: int = 0
    app_id: str = ""
    instance_id: str = ""
    instance_index: str = ""
    tls: bool = False
    server_cert_domain_san: str = ""
    protocol: str = "http1"
    availability_zone: str = ""
    isolation_segment: str = ""
    tags: dict[str, str] = {}
    # The id workers count this endpoint's Gorouter metrics under (registry/components.py).
    component: int = 0

    @property
    def address(self) -> str:
        return host_port(self.host, self.port)


class PoolRecord(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """A route's pool as workers see it. `cursor` (round-robin) and `hash_table` (hash-based
    balancing's lookup table) are worker-local state, never encoded with a value (the writer
    always leaves them at their defaults)."""

    host: str
    path: str
    endpoints: tuple[EndpointRecord, ...]
    load_balancing: str = ""
    route_service_url: str = ""
    # Pool-level, as in Gorouter: from the last registration that chose "hash".
    hash_header: str = ""
    hash_balance: float = 0.0
    cursor: int = -1
    hash_table: tuple[int, ...] = ()

    @property
    def uri(self) -> str:
        return self.host + self.path


EMPTY_SHARD: Final = msgspec.msgpack.encode([])

_encoder = msgspec.msgpack.Encoder()


def encode_shard(pools: list[PoolRecord]) -> bytes:
    return _encoder.encode(pools)


def encode_pool(pool: PoolRecord) -> bytes:
    return _encoder.encode(pool)


def join_shard(encoded_pools: list[bytes]) -> bytes:
    """The same bytes as `encode_shard`, from pools encoded one by one (a msgpack array).

    The writer keeps each pool's encoding until the pool changes, so publishing a shard in a
    registration storm costs a join, not a re-encode of every route in it.
    """
    count = len(encoded_pools)
    if count <= 15:
        header = bytes((0x90 | count,))
    elif count <= 0xFFFF:
        header = b"\xdc" + count.to_bytes(2, "big")
    else:
        header = b"\xdd" + count.to_bytes(4, "big")
    return header + b"".join(encoded_pools)
