"""Access log rotation: after a rename (what logrotate does) and SIGHUP, routerd's workers write
to a new file at the configured path, and nothing more to the renamed one."""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.ctl.conftest import (
    PATIENCE,
    BackendFactory,
    RouterFactory,
    register_and_wait,
    routerctl_command,
)
from tests.support.nats import NatsClient
from tests.support.processes import pending_signals, unrelated_process
from tests.support.routerd import Routerd
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HOST = "logged.ctl.test"
INSTALLED_ROUTERCTL = "/usr/local/bin/routerctl"


@pytest.fixture
def logging_router(
    routerd_factory: RouterFactory,
    backend_factory: BackendFactory,
    nats_client: NatsClient,
    tmp_path: Path,
) -> Routerd:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    router = routerd_factory({"access_log": {"file": str(log_dir / "access.log")}})
    register_and_wait(router, nats_client, backend_factory().port, HOST)
    return router


def access_log(router: Routerd) -> Path:
    return Path(router.config["access_log"]["file"])


def request_logged(router: Routerd, path: str, log: Path) -> None:
    assert router.get(path, host=HOST).status == 200
    wait_until(
        lambda: log.exists() and path in log.read_text(), timeout=PATIENCE, what=f"{path} in {log}"
    )


def wait_reopened(router: Routerd, reloads_before: int) -> None:
    """Every worker has handled the reload, so every later line goes to the reopened file."""
    workers = int(router.config["workers"])
    wait_until(
        lambda: len(router.events_named("worker-config-reloaded")) >= reloads_before + workers,
        timeout=PATIENCE,
        what="every worker reloaded",
    )


def test_sighup_after_rename_writes_to_a_new_file(logging_router: Routerd) -> None:
    log = access_log(logging_router)
    rotated = log.with_name("access.log.1")
    request_logged(logging_router, "/before-rotation", log)

    log.rename(rotated)
    logging_router.signal(signal.SIGHUP)
    wait_reopened(logging_router, 0)
    for _ in range(4):  # on whichever workers take them
        request_logged(logging_router, "/after-rotation", log)

    assert os.stat(log).st_ino != os.stat(rotated).st_ino
    assert "/before-rotation" not in log.read_text()
    assert "/after-rotation" not in rotated.read_text()
    assert "/before-rotation" in rotated.read_text()


def logrotate_binary() -> str:
    # `make test` installs logrotate; it lives in /usr/sbin, which a non-root PATH may lack.
    found = shutil.which("logrotate") or shutil.which("logrotate", path="/usr/sbin:/sbin")
    assert found, "logrotate is missing: `make test` installs it (make test-deps)"
    return found


def shipped_config(tmp_path: Path, log_dir: Path, run_dir: str) -> Path:
    """The shipped file, pointed at `log_dir` and `run_dir`, rotating as the current user
    instead of `routerd` and with this checkout's routerctl; everything else (postrotate
    included) runs as shipped."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    shipped = (REPO / "etc" / "logrotate.d" / "routerd").read_text()
    assert INSTALLED_ROUTERCTL in shipped
    config = tmp_path / "logrotate.conf"
    config.write_text(
        shipped.replace("/var/log/routerd", str(log_dir))
        .replace("/run/routerd", run_dir)
        .replace("su routerd routerd", f"su {user} {group}")
        .replace("create 0640 routerd routerd", f"create 0640 {user} {group}")
        .replace(INSTALLED_ROUTERCTL, shlex.join(routerctl_command()))
    )
    config.chmod(0o644)
    return config


def run_logrotate(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [logrotate_binary(), "--force", "--state", str(tmp_path / "state"), str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_shipped_logrotate_config_rotates_and_routerd_reopens(
    logging_router: Routerd, tmp_path: Path
) -> None:
    log = access_log(logging_router)
    config = shipped_config(tmp_path, log.parent, logging_router.config["run_dir"])
    request_logged(logging_router, "/before-rotation", log)

    result = run_logrotate(tmp_path, config)

    assert result.returncode == 0, result.stderr
    rotated = log.with_name("access.log.1")  # delaycompress: the first rotation stays plain
    assert "/before-rotation" in rotated.read_text()
    wait_reopened(logging_router, 0)
    for _ in range(4):
        request_logged(logging_router, "/after-rotation", log)
    assert "/after-rotation" not in rotated.read_text()
    assert log.stat().st_mode & 0o777 == 0o640


def test_shipped_logrotate_config_signals_no_process_named_by_a_stale_pid_file(
    tmp_path: Path,
) -> None:
    # routerd was killed; its PID file stayed behind and the PID now belongs to another process.
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    (log_dir / "access.log").write_text("a line from before\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with unrelated_process() as other:
        (run_dir / "routerd.pid").write_text(f"{other.pid}\n")

        result = run_logrotate(tmp_path, shipped_config(tmp_path, log_dir, str(run_dir)))

        assert result.returncode == 0, result.stderr
        assert not pending_signals(other.pid), "logrotate signalled an unrelated process"
        assert other.poll() is None
    assert (log_dir / "access.log.1").read_text() == "a line from before\n"
