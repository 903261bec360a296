"""Layout of the shared-memory route table.

Theory of operation
===================

One writer (the supervisor) and many readers (workers, `routerctl --from-shm`) share one file
mapping. Nobody takes a lock; readers never block the writer and never see a torn shard.

    [ header: 4 KiB ][ shard directory: 64 B per shard ][ arena: shard payloads ... ]

Header words (8 bytes each, native-endian, 8-byte aligned): magic, layout version, shard count,
global generation, mapped size, directory offset, arena offset, writer pid, route and endpoint
counts, last update time. Readers check magic and version before anything else.

Directory entry for each shard (one cache line): `seq, active, off0, len0, off1, len1`. The two
(off, len) pairs are the shard's double buffer; `active` says which one readers use.

Publishing a shard (writer):
  1. Allocate a region for the new payload in the arena and copy the payload in. Readers do not
     look at it yet: it is only reachable through the inactive descriptor.
  2. Store (off, len) into the inactive descriptor.
  3. seq += 1 (odd: a flip is under way), active = inactive, seq += 1 (even again).
  4. Return the previously active region to the allocator. It may be reused at once.

Reading a shard (reader):
  s1 = seq; if odd, retry. Read active, its (off, len), copy the bytes out, s2 = seq.
  If s1 != s2 the copy may be torn (the writer flipped, maybe reused the region): retry.
  A copy taken between two equal even reads of seq is a complete published payload, because the
  writer finishes every store of a payload before it makes seq odd, and only overwrites a region
  after a later flip, which changes seq. Readers retry a bounded number of times, then report an
  error value; they never spin forever.

Invariants:
  - seq is even whenever no flip is under way; it only grows; each publish adds exactly 2, so
    seq / 2 is the shard's generation and readers cache decoded shards by it: a lookup costs one
    8-byte read plus dict work.
  - The active descriptor always points to a complete payload. Both descriptors point to complete
    payloads while seq is odd, so if the writer dies mid-flip (seq stuck odd, writer pid gone) a
    reader may still use the active buffer.
  - The global generation grows by one per published batch (coalesced registrations).

Growth: when the arena is full, the writer extends the file (ftruncate), maps it again at the new
size and records the new size in the header before publishing anything that lives beyond the old
end. A reader whose descriptor points past its mapping maps the file again at the size in the
header; its old mapping stays valid for any copy in progress, so no reader ever stops.

Memory ordering: this relies on x86-64's total store order. The writer's stores become visible in
program order and a reader's loads are not reordered with each other, so "payload, then seq" on one
side and "seq, payload, seq" on the other is enough; CPython performs each 8-byte access as one
aligned load or store. On ARM (weakly ordered) this is not enough: the writer would need a release
barrier before each seq store and readers an acquire barrier after reading seq (e.g. a small C
extension using `__atomic_store_n`/`__atomic_load_n`), which pure Python cannot express.
"""

from __future__ import annotations

import sys
from typing import Final

if sys.byteorder != "little":  # pragma: no cover - the layout is native, but only tested on LE
    raise ImportError("the shared route table supports little-endian machines only")

MAGIC: Final = int.from_bytes(b"RTRTBL01", sys.byteorder)
# 2: pools carry hash-based balancing's header and balance factor (registry/records.py).
LAYOUT_VERSION: Final = 2
PAGE: Final = 4096
WORD: Final = 8

# Header word indexes.
H_MAGIC: Final = 0
H_VERSION: Final = 1
H_SHARDS: Final = 2
H_GENERATION: Final = 3
H_SIZE: Final = 4
H_DIR_OFFSET: Final = 5
H_ARENA_OFFSET: Final = 6
H_WRITER_PID: Final = 7
H_ROUTES: Final = 8
H_ENDPOINTS: Final = 9
H_LAST_UPDATE_MS: Final = 10
H_CREATED_MS: Final = 11
HEADER_BYTES: Final = PAGE

# Directory entry word offsets.
ENTRY_WORDS: Final = 8
E_SEQ: Final = 0
E_ACTIVE: Final = 1
E_OFF0: Final = 2
E_LEN0: Final = 3

DIR_OFFSET: Final = HEADER_BYTES


def round_up(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def arena_offset(shard_count: int) -> int:
    return round_up(DIR_OFFSET + shard_count * ENTRY_WORDS * WORD, PAGE)


def entry_word(shard: int) -> int:
    """Index (in words) of a shard's directory entry."""
    return DIR_OFFSET // WORD + shard * ENTRY_WORDS
