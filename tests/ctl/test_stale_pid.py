"""routerctl signals only the routerd that holds run_dir's lock, never whatever process a stale
PID file names; `routerctl reload` sends a running routerd SIGHUP."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from registry.shm import layout
from registry.shm.region import FileRegion
from tests.ctl.conftest import PATIENCE, RouterFactory, RunCtl, assert_one_line_error
from tests.support.processes import pending_signals, unrelated_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

SIGNALLING_COMMANDS = ("drain", "reload")


def assert_refused(routerctl: RunCtl, run_dir: Path, pid: int) -> None:
    for command in SIGNALLING_COMMANDS:
        result = routerctl(command, "--run-dir", str(run_dir))
        line = assert_one_line_error(result, 3)
        assert line == (
            f"routerctl: no routerd is running for run_dir {run_dir} "
            f"(stale PID file names PID {pid})"
        ), command
        assert result.stdout == "", command


def test_stale_pid_file_naming_an_unrelated_process_is_refused(
    routerctl: RunCtl, tmp_path: Path
) -> None:
    with unrelated_process() as other:
        (tmp_path / "routerd.pid").write_text(f"{other.pid}\n")

        assert_refused(routerctl, tmp_path, other.pid)

        assert not pending_signals(other.pid)
        assert other.poll() is None


def test_pid_file_left_by_a_killed_routerd_is_refused_once_its_pid_is_reused(
    routerd_factory: RouterFactory, routerctl: RunCtl
) -> None:
    router = routerd_factory()
    assert router.process is not None
    run_dir = Path(router.config["run_dir"])
    router.signal(signal.SIGKILL)
    router.wait_exit(timeout=PATIENCE)
    assert (run_dir / "routerd.lock").exists()

    with unrelated_process() as other:
        # As if the kernel had given the supervisor's PID to another process.
        (run_dir / "routerd.pid").write_text(f"{other.pid}\n")

        assert_refused(routerctl, run_dir, other.pid)

        assert not pending_signals(other.pid)
        assert other.poll() is None


def test_reload_sends_sighup_to_the_running_routerd(
    routerd_factory: RouterFactory, routerctl: RunCtl
) -> None:
    router = routerd_factory()
    assert router.process is not None

    result = routerctl("reload", "--config", str(router.config_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"sent SIGHUP to routerd (pid {router.process.pid}): "
        "it re-reads its config and reopens its logs\n"
    )
    wait_until(
        lambda: router.events_named("config-reloaded"), timeout=PATIENCE, what="config-reloaded"
    )
    assert router.health().status == 200


def test_drain_names_the_lock_holder_even_when_the_pid_file_is_wrong(
    routerd_factory: RouterFactory, routerctl: RunCtl
) -> None:
    router = routerd_factory({"drain_wait": 0, "drain_timeout": 5})
    assert router.process is not None
    pid_file = Path(router.config["run_dir"]) / "routerd.pid"
    with unrelated_process() as other:
        pid_file.write_text(f"{other.pid}\n")

        result = routerctl("drain", "--config", str(router.config_path), "--timeout", "60")

        assert not pending_signals(other.pid)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.startswith(f"sent SIGUSR1 to routerd (pid {router.process.pid})")
    assert router.wait_exit(timeout=PATIENCE) == 0


def test_routes_from_shm_knows_a_killed_routerd_whose_pid_was_reused(
    routerd_factory: RouterFactory, routerctl: RunCtl
) -> None:
    router = routerd_factory()
    run_dir = Path(router.config["run_dir"])
    router.signal(signal.SIGKILL)
    router.wait_exit(timeout=PATIENCE)

    with unrelated_process() as other:
        # As if the kernel had given the killed supervisor's PID to another process.
        region = FileRegion.open(str(run_dir / "routes.shm"), writable=True)
        words = region.buffer.cast("Q")
        words[layout.H_WRITER_PID] = other.pid
        words.release()
        region.close()

        result = routerctl("routes", "--from-shm", "--run-dir", str(run_dir))

    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"routerctl: routerd (pid {other.pid}) is not running: "
        "this is the table it last published\n"
    )
