"""Maglev consistent hashing, as Gorouter's route/maglev.go builds it.

The lookup table maps a request header's hash to an endpoint so that the same value reaches the
same endpoint, and adding or removing one endpoint moves only about 1/N of the values. It is
built exactly as Gorouter builds it (the same table size, FNV-1a 64 hashes, permutation and fill
order), so routerd and Gorouter routers behind one load balancer send a value to the same
instance.

The table depends only on the set of endpoint ids, so a worker builds it once per decoded pool
(on the first request that needs it) and keeps it with the pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

# Gorouter's lookupTableSize: a prime, about 100 times the endpoints a route is expected to have.
TABLE_SIZE: Final = 1801
_FNV_OFFSET: Final = 0xCBF29CE484222325
_FNV_PRIME: Final = 0x100000001B3
_MASK64: Final = (1 << 64) - 1


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits (Go's hash/fnv New64a)."""
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & _MASK64
    return value


def build_table(ids: Sequence[str]) -> list[int]:
    """Maglev's lookup table over `ids` (distinct, sorted as Gorouter keeps them): for each of
    TABLE_SIZE slots, the index into `ids` of the endpoint that owns it. Empty for no ids."""
    count = len(ids)
    if count == 0:
        return []
    offsets = []
    skips = []
    for endpoint_id in ids:
        digest = fnv1a64(endpoint_id.encode())
        offsets.append(digest % TABLE_SIZE)
        skips.append(digest % (TABLE_SIZE - 1) + 1)
    following = [0] * count  # each endpoint's position in its own permutation
    entry = [-1] * TABLE_SIZE
    filled = 0
    # Endpoints take turns claiming their next free preferred slot until every slot is owned.
    while True:
        for index in range(count):
            offset, skip, step = offsets[index], skips[index], following[index]
            candidate = (offset + step * skip) % TABLE_SIZE
            while entry[candidate] >= 0:
                step += 1
                if step >= TABLE_SIZE:  # cannot happen with a prime size; Gorouter's guard
                    step = 0
                candidate = (offset + step * skip) % TABLE_SIZE
            entry[candidate] = index
            following[index] = step + 1
            filled += 1
            if filled == TABLE_SIZE:
                return entry


def slot_for(key: bytes) -> int:
    """The table slot a header value hashes to."""
    return fnv1a64(key) % TABLE_SIZE
