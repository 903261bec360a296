"""Where the shared table's bytes live: a mapped file, or a bytearray in unit tests."""

from __future__ import annotations

import contextlib
import mmap
import os
from typing import Protocol


class Region(Protocol):
    """A byte buffer that may be remapped larger."""

    @property
    def buffer(self) -> memoryview: ...

    def remap(self, size: int) -> None:
        """Make at least `size` bytes available (writers grow; readers map what exists)."""


class MemoryRegion:
    """A region over a bytearray, for unit tests. Writer and readers share one instance. Like a
    file mapping, growth keeps existing bytes where they are: the bytearray is reserved up front
    and `buffer` is a view of its first `size` bytes."""

    def __init__(self, size: int, capacity: int | None = None) -> None:
        self._data = bytearray(max(size, capacity or size * 16))
        self.buffer = memoryview(self._data)[:size]

    def __repr__(self) -> str:
        return f"MemoryRegion({len(self.buffer)} of {len(self._data)} bytes)"

    def remap(self, size: int) -> None:
        if size > len(self._data):
            raise MemoryError(f"MemoryRegion capacity {len(self._data)} < {size}")
        if size > len(self.buffer):
            self.buffer = memoryview(self._data)[:size]


class FileRegion:
    """A shared mapping of a file under run_dir."""

    def __init__(
        self, path: str, fd: int, writable: bool, size: int, final_path: str | None = None
    ) -> None:
        self.path = path
        self._final_path = final_path or path
        self._fd = fd
        self.writable = writable
        self._mmap = self._map(size)
        self.buffer = memoryview(self._mmap)

    def __repr__(self) -> str:
        mode = "rw" if self.writable else "ro"
        return f"FileRegion({self.path!r}, {mode}, {len(self._mmap)} bytes)"

    @classmethod
    def create(cls, path: str, size: int) -> FileRegion:
        """A new zero-filled file; callers initialise it, then `publish_path()` it."""
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fd, size)
        return cls(tmp, fd, True, size, final_path=path)

    def publish_path(self) -> None:
        """Atomically move a created file into place, so readers never see it half-made."""
        if self._final_path != self.path:
            os.replace(self.path, self._final_path)
            self.path = self._final_path

    @classmethod
    def open(cls, path: str, writable: bool = False) -> FileRegion:
        fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            return cls(path, fd, writable, size)
        except BaseException:
            os.close(fd)
            raise

    def _map(self, size: int) -> mmap.mmap:
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if self.writable else 0)
        return mmap.mmap(self._fd, size, mmap.MAP_SHARED, prot)

    def remap(self, size: int) -> None:
        if self.writable and size > os.fstat(self._fd).st_size:
            os.ftruncate(self._fd, size)
        size = max(size, os.fstat(self._fd).st_size)
        if size <= len(self._mmap):
            return
        # Map anew rather than resize: views of the old mapping may still be in use, and
        # the old mapping stays valid until they are gone.
        self._mmap = self._map(size)
        self.buffer = memoryview(self._mmap)

    def punch_hole(self, offset: int, length: int) -> None:
        """Zero a page-aligned range and give its memory back (fresh pages read as zeros)."""
        self._mmap.madvise(mmap.MADV_REMOVE, offset, length)

    def close(self) -> None:
        self.buffer.release()
        # A cast view may still be alive somewhere; then the mapping goes with it.
        with contextlib.suppress(BufferError):
            self._mmap.close()
        os.close(self._fd)
