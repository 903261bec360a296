"""PID files: written whole or not at all, and removed only by the process they name.

routerd writes `run_dir/routerd.pid`, and with Gorouter's `pid_file` the same PID to that path
too (for monit, BOSH or a script that reads Gorouter's). A reader never sees a half-written file:
the text goes to a temporary file beside it, which then replaces the path in one rename. At a
clean stop a file is removed only while it still names this process; one rewritten by someone
else since is theirs.
"""

from __future__ import annotations

import contextlib
import os

from supervisor.run_lock import MAX_PID_TEXT, parse_pid


def write_pid_file(path: str, pid: int) -> None:
    """Put `pid` in the file at `path`, atomically. Raises OSError (the path is unusable)."""
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{pid}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        try:
            os.write(fd, f"{pid}\n".encode())
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def remove_pid_file(path: str, pid: int) -> bool:
    """Remove the file at `path` if it names `pid`; whether it was removed."""
    try:
        with open(path) as handle:
            if parse_pid(handle.read(MAX_PID_TEXT)) != pid:
                return False
        os.unlink(path)
    except OSError:
        return False
    return True
