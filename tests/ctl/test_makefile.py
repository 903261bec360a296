"""Which interpreter `make` builds the venv with, and when it builds it again (`make -n`, in a
copy of the Makefile, so this checkout's venv is never touched)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTION = Path("/usr/bin/python3")


def chosen() -> tuple[str, str]:
    """What the Makefile should pick here: its command, and the interpreter's real path."""
    if DISTRIBUTION.exists():
        check = [str(DISTRIBUTION), "-c", "import sys; sys.exit(sys.version_info < (3, 11))"]
        if subprocess.run(check, check=False).returncode == 0:
            return str(DISTRIBUTION), real_interpreter(str(DISTRIBUTION))
    return "python3", real_interpreter("python3")


def real_interpreter(command: str) -> str:
    code = "import os, sys; print(os.path.realpath(sys.executable))"
    return subprocess.run(
        [command, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def dry_run(checkout: Path, *args: str) -> list[str]:
    """The venv commands `make install` would run."""
    return [
        line for line in make_n(checkout, *args) if " -m venv " in line and line.endswith(" .venv")
    ]


def make_n(checkout: Path, *args: str) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHON"}
    env.pop("MAKEFLAGS", None)
    result = subprocess.run(
        ["make", "-n", "install", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()


def checkout_with_venv(tmp_path: Path, interpreter: str | None) -> Path:
    """A copy of the Makefile, what it reads and what its stamp depends on, with a venv made by
    `interpreter` (None: no venv at all) whose stamp is newer than pyproject.toml."""
    with (REPO / "pyproject.toml").open("rb") as file:
        compiled = tomllib.load(file)["tool"]["routerd"]["compiled"]
    for name in ("Makefile", "pyproject.toml", "setup.py", "scripts/python", *compiled):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    if interpreter is not None:
        venv = tmp_path / ".venv"
        venv.mkdir()
        (venv / ".interpreter").write_text(interpreter + "\n")
        stamp = venv / ".installed"
        stamp.touch()
        later = time.time() + 60
        os.utime(stamp, (later, later))
    return tmp_path


def test_a_fresh_checkout_builds_with_the_distributions_python_when_new_enough(
    tmp_path: Path,
) -> None:
    command, _ = chosen()
    assert dry_run(checkout_with_venv(tmp_path, None)) == [f"{command} -m venv --clear .venv"]


def test_a_venv_made_with_the_chosen_interpreter_is_kept(tmp_path: Path) -> None:
    _, interpreter = chosen()
    assert dry_run(checkout_with_venv(tmp_path, interpreter)) == []


def test_a_venv_made_with_another_interpreter_is_made_again(tmp_path: Path) -> None:
    command, _ = chosen()
    checkout = checkout_with_venv(tmp_path, "/opt/some/other/python3.11")
    assert dry_run(checkout) == [f"{command} -m venv --clear .venv"]


def test_naming_an_interpreter_makes_the_venv_with_it(tmp_path: Path) -> None:
    # The venv was made with the default; PYTHON names the interpreter running this test.
    _, interpreter = chosen()
    checkout = checkout_with_venv(tmp_path, interpreter)
    named = sys.executable
    expected = [] if real_interpreter(named) == interpreter else [f"{named} -m venv --clear .venv"]
    assert dry_run(checkout, f"PYTHON={named}") == expected


def test_editing_a_compiled_module_compiles_again(tmp_path: Path) -> None:
    _, interpreter = chosen()
    checkout = checkout_with_venv(tmp_path, interpreter)
    compile_line = ".venv/bin/pip install --quiet --no-build-isolation --no-deps -e ."
    assert compile_line not in make_n(checkout)
    later = time.time() + 120  # after the stamp
    os.utime(checkout / "router" / "upstream.py", (later, later))
    assert compile_line in make_n(checkout)
