"""Stable counter slots for endpoint addresses.

Every address in the table holds one slot while any route uses it. A freed slot cools down for a
grace period before another address may take it, so in-flight counts for the old address (which
workers decrement when its requests finish) never land on a new one. An address that comes back
during the grace period gets its old slot again.
"""

from __future__ import annotations

import heapq


class SlotsExhausted(Exception):
    """Every slot is in use or cooling down."""


class SlotAllocator:
    def __init__(self, capacity: int, grace_seconds: float) -> None:
        self.capacity = capacity
        self.grace_seconds = grace_seconds
        self._by_address: dict[str, int] = {}
        self._refs: dict[str, int] = {}
        self._cooling: dict[str, tuple[int, float]] = {}
        self._cooling_heap: list[tuple[float, int, str]] = []
        self._free: list[int] = []
        self._next = 0

    def __repr__(self) -> str:
        return (
            f"SlotAllocator(used={len(self._by_address)}, cooling={len(self._cooling)}, "
            f"free={len(self._free)}, capacity={self.capacity})"
        )

    def __len__(self) -> int:
        return len(self._by_address)

    @property
    def high_water(self) -> int:
        """Every slot ever handed out is below this."""
        return self._next

    def used_slots(self) -> list[int]:
        return list(self._by_address.values())

    def slot_of(self, address: str) -> int | None:
        return self._by_address.get(address)

    def can_acquire(self, address: str, now: float) -> bool:
        if address in self._by_address or address in self._cooling:
            return True
        self._reclaim(now)
        return bool(self._free) or self._next < self.capacity

    def acquire(self, address: str, now: float) -> int:
        """Take a reference on `address`'s slot, allocating one if needed.

        Raises SlotsExhausted; callers check `can_acquire` first.
        """
        slot = self._by_address.get(address)
        if slot is not None:
            self._refs[address] += 1
            return slot
        cooled = self._cooling.pop(address, None)
        if cooled is not None:
            slot = cooled[0]
        else:
            self._reclaim(now)
            if self._free:
                slot = heapq.heappop(self._free)
            elif self._next < self.capacity:
                slot = self._next
                self._next += 1
            else:
                raise SlotsExhausted(self.capacity)
        self._by_address[address] = slot
        self._refs[address] = 1
        return slot

    def release(self, address: str, now: float) -> None:
        """Drop one reference; the last one starts the slot's grace period."""
        refs = self._refs.get(address)
        if refs is None:
            return
        if refs > 1:
            self._refs[address] = refs - 1
            return
        del self._refs[address]
        slot = self._by_address.pop(address)
        expiry = now + self.grace_seconds
        self._cooling[address] = (slot, expiry)
        heapq.heappush(self._cooling_heap, (expiry, slot, address))

    def _reclaim(self, now: float) -> None:
        heap = self._cooling_heap
        while heap and heap[0][0] <= now:
            expiry, slot, address = heapq.heappop(heap)
            # Skip entries made stale by the address coming back (and perhaps leaving again).
            if self._cooling.get(address) == (slot, expiry):
                del self._cooling[address]
                heapq.heappush(self._free, slot)
