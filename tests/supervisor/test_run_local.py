"""`make run` (scripts/run-local) in a terminal: one Ctrl-C stops routerd gracefully, its workers
finish and exit 0, and NATS stops with it.

The terminal is a real pty: Ctrl-C is the byte 0x03, and the kernel sends SIGINT to the whole
foreground process group (the script, routerd, its workers and nats-server).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.ports import free_port, is_listening
from tests.support.routerd import http_request
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CTRL_C = b"\x03"
LOG_LINE = '{"log_level"'


class Terminal:
    """Everything the script writes to the pty, read as it comes (a full pty would block it)."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the pty's other end has exited
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    def events(self) -> list[dict[str, Any]]:
        text = b"".join(self.chunks).decode("utf-8", "replace")
        # The terminal echoes Ctrl-C as "^C" in front of whatever line comes next.
        return [
            json.loads(line[line.index(LOG_LINE) :])
            for line in text.splitlines()
            if LOG_LINE in line
        ]


def test_ctrl_c_under_make_run_stops_everything_gracefully(tmp_path: Path) -> None:
    if not (REPO / ".venv" / "bin" / "routerd").exists():
        pytest.skip("scripts/run-local needs the checkout's .venv (make test creates it)")
    port, status_port, nats_port = free_port(), free_port(), free_port()
    config = yaml.safe_load((REPO / "etc" / "router.yml").read_text())
    config.update(port=port, bind_address="127.0.0.1", workers=2, start_response_delay_interval=0)
    config["status"].update(host="127.0.0.1", port=status_port, routes={"port": free_port()})
    config["nats"]["hosts"] = [{"hostname": "127.0.0.1", "port": nats_port}]
    config.pop("access_log", None)
    (tmp_path / "router.yml").write_text(yaml.safe_dump(config))
    # The script runs from a checkout: .venv and its own path, with ./run made in tmp_path.
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    master, slave = os.openpty()
    # setsid --ctty: a new session whose controlling terminal is the pty (its stdin); the
    # script's process group is the terminal's foreground group, as under a shell's `make run`.
    script = subprocess.Popen(
        ["setsid", "--ctty", "sh", "scripts/run-local", "router.yml", str(nats_port)],
        cwd=tmp_path,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    terminal = Terminal(master)
    try:
        wait_until(
            lambda: http_request(status_port, "GET", "/health").status == 200,
            timeout=60,
            what="routerd under run-local to serve",
        )

        os.write(master, CTRL_C)

        assert script.wait(timeout=60) == 0
    finally:
        if script.poll() is None:
            os.killpg(script.pid, 9)
            script.wait(timeout=10)
        terminal.reader.join(timeout=10)
        os.close(master)
    events = terminal.events()
    names = [event["message"] for event in events]
    assert names.count("router-stopping") == 1, "\n".join(names)
    assert "router-stop-forced" not in names
    stopped = [e["data"] for e in events if e["message"] == "worker-stopped" and "pid" in e["data"]]
    assert [worker["exit_code"] for worker in stopped] == [0, 0], stopped
    assert events[-1]["message"] == "router-stopped"
    assert events[-1]["data"]["exit_code"] == 0
    assert not (tmp_path / "run" / "routerd.pid").exists()
    assert not is_listening(nats_port)
