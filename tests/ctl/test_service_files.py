"""The systemd unit, the logrotate file and scripts/install-service, checked without touching
this machine's /etc."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runtime.config_model import Config
from runtime.durations import parse_duration
from tests.support.routerd import run_routerd

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "etc" / "systemd" / "routerd.service"
INSTALL = REPO / "scripts" / "install-service"
INSTALLED_ROUTERD = "/usr/local/bin/routerd"


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # `verify` insists that every Exec*= binary exists and is executable. /usr/local/bin/routerd
    # exists only once install-service has run, so a copy of the unit points at a stand-in; every
    # other line is verified as shipped.
    stand_in = tmp_path / "routerd"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "routerd.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED_ROUTERD, str(stand_in)))

    result = run("systemd-analyze", "verify", str(unit))

    # Unknown or misspelt keys are only warnings (exit 0): any output at all is a failure.
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_stopping_the_unit_drains_within_its_stop_timeout() -> None:
    settings = unit_settings()
    defaults = Config()
    # Workers get drain_timeout plus 5 s to finish before routerd exits.
    drain = float(defaults.drain_wait) + float(defaults.drain_timeout) + 5

    assert settings["KillSignal"] == ["SIGUSR1"]
    # Only the supervisor gets SIGUSR1; it would kill a worker outright.
    assert settings["KillMode"] == ["mixed"]
    assert float(parse_duration(settings["TimeoutStopSec"][0])) > drain
    assert settings["Type"] == ["notify"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["RuntimeDirectory"] == ["routerd"]
    assert Config().run_dir == "/run/routerd"
    assert settings["ExecStart"] == [f"{INSTALLED_ROUTERD} --config /etc/routerd/router.yml"]


def test_install_service_stages_every_file_and_keeps_an_existing_config(tmp_path: Path) -> None:
    def install() -> subprocess.CompletedProcess[str]:
        return run(str(INSTALL), "--root", str(tmp_path), "--no-venv")

    first = install()

    assert first.returncode == 0, first.stderr
    assert "systemctl status routerd" in first.stdout
    assert "routerctl status" in first.stdout
    unit = tmp_path / "etc/systemd/system/routerd.service"
    assert unit.read_text() == UNIT.read_text()
    assert (tmp_path / "etc/logrotate.d/routerd").read_text() == (
        REPO / "etc/logrotate.d/routerd"
    ).read_text()
    # The unit's ExecStart is the link install-service makes.
    link = tmp_path / INSTALLED_ROUTERD.lstrip("/")
    assert link.is_symlink()
    assert str(link.readlink()) == "/opt/routerd/bin/routerd"
    config = tmp_path / "etc/routerd/router.yml"
    assert config.stat().st_mode & 0o777 == 0o640
    text = config.read_text()
    assert "change-me" not in text
    assert "file: /var/log/routerd/access.log" in text
    check = run_routerd("--check-config", str(config))
    assert check.returncode == 0, check.stderr

    config.write_text(text + "# edited by the operator\n")
    second = install()

    assert second.returncode == 0, second.stderr
    assert "kept the existing /etc/routerd/router.yml" in second.stdout
    assert config.read_text().endswith("# edited by the operator\n")


def test_install_service_rejects_unknown_options() -> None:
    result = run(str(INSTALL), "--frobnicate")

    assert result.returncode == 2
    assert result.stderr == "install-service: unknown option --frobnicate (see --help)\n"
