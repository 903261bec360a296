"""The access log file: whole lines or none, and every lost line counted and reported.

Every worker appends batches of lines to the same file (O_APPEND). A batch goes out in one
`os.write` while the writer holds an exclusive `flock` on the file, which the workers' writers
all take. When the disk fills in the middle of a batch the write is short and the file ends in
a cut line; since no other worker can append while the lock is held, truncating the file back
to the end of the batch's last whole line removes the cut part, and the file only ever holds
whole lines. The rest of the batch is tried again at once; what cannot be written whole is
counted as lost.

Losses are counted in the worker's counter row (`/varz`, `/metrics`) and logged at most once
per `report_interval` (config `logging.error_sample_interval`) with the count and the error,
plus once when writes succeed again: a full disk costs a few log lines, not one per request.
Writing resumes by itself when there is room; after an error that is not about space (EIO,
EBADF, ...) the path is reopened, at most once per interval. Nothing here raises: the worker
never stops serving because its log cannot be written.

Called from the worker's event loop, as nginx writes its log from its own: a batch of some
100 KiB is one `os.write` to the page cache, once per batch, and the lock is held only by a
worker in the middle of such a write. A writer thread was tried and dropped: with the loop
busy it got the GIL too rarely to keep up, and lines were lost on a disk with room to spare.
The price is nginx's: a disk that hangs (not one that fails or fills) holds the worker.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable
from typing import Final

from router.accesslog_losses import LineLosses
from runtime import logs

# Errors that go away when space is freed; reopening the file would not help with them.
SPACE_ERRORS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

log = logs.EventLog("vcap.gorouter.access-log")


class WriteFailed(Exception):
    """A batch could not be written whole: `written` bytes of it (whole lines) are in the file."""

    def __init__(self, written: int, error: str, code: int | None) -> None:
        super().__init__(error)
        self.written = written
        self.error = error
        self.code = code


def describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{name}: {exc.strerror}" if name else str(exc)


def append_whole_lines(fd: int, batch: bytes) -> None:
    """Append `batch` (lines ending in b"\\n") so that the file holds only whole lines.

    Raises WriteFailed with how much of the batch was kept (always up to a line end).
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        raise WriteFailed(0, describe(exc), exc.errno) from None
    try:
        view = memoryview(batch)
        done = 0
        while done < len(batch):
            try:
                count = os.write(fd, view[done:])
            except OSError as exc:
                raise WriteFailed(done, describe(exc), exc.errno) from None
            if done + count == len(batch):
                return
            # A short write: cut the file back to the end of the last whole line written.
            whole = batch.rfind(b"\n", done, done + count) + 1
            try:
                end = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: just past what was written
                os.ftruncate(fd, end - (done + count - max(whole, done)))
            except OSError as exc:
                raise WriteFailed(
                    done, f"short write, and the cut line stays: {describe(exc)}", exc.errno
                ) from None
            if whole <= done:
                # A regular file takes fewer bytes than asked only when it is out of room.
                raise WriteFailed(
                    done, "ENOSPC: short write, no room for a whole line", errno.ENOSPC
                )
            done = whole
    finally:
        with contextlib.suppress(OSError):  # the descriptor is gone, and its lock with it
            fcntl.flock(fd, fcntl.LOCK_UN)


class AccessLogFile:
    """The open access log of one worker."""

    def __init__(
        self,
        path: str,
        report_interval: float,
        stats: memoryview | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.report_interval = report_interval
        self._clock = clock
        self.losses = LineLosses(
            "access-log-write", {"path": path}, report_interval, stats, clock, count_failures=True
        )
        self._fd = -1
        self._open_error = ""
        self._reopen_due = False
        self._reopen_tried_at = -report_interval
        self.reopen()

    def __repr__(self) -> str:
        return f"AccessLogFile({self.path!r}, fd={self._fd}, {self.losses!r})"

    def fileno(self) -> int:
        """The descriptor lines go to now; -1 while the path cannot be opened."""
        return self._fd

    def reopen(self) -> None:
        """Open the path afresh (after logrotate moved the file); keep the old file if it fails."""
        self._reopen_tried_at = self._clock()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            # Tried again at most once per interval; the old file (if any) takes lines meanwhile.
            self._open_error = describe(exc)
            self._reopen_due = True
            log.error("access-log-open-failed", path=self.path, error=self._open_error)
            return
        self._close_fd()
        self._fd = fd
        self._reopen_due = False

    def close(self) -> None:
        self.losses.report_now()
        self._close_fd()

    def write(self, batch: bytes) -> None:
        now = self._clock()
        if self._reopen_due and now - self._reopen_tried_at >= self.report_interval:
            self.reopen()
        if self._fd < 0:
            self.losses.lose(batch.count(b"\n"), self._open_error or "not open")
            return
        try:
            append_whole_lines(self._fd, batch)
        except WriteFailed as failure:
            self.losses.lose(batch.count(b"\n", failure.written), failure.error)
            if failure.code not in SPACE_ERRORS:
                self._reopen_due = True
            return
        self.losses.went_through()

    def _close_fd(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
