"""routerd's build. The modules listed under [tool.routerd] in pyproject.toml are compiled to C
extensions with mypyc, which type-checks them against routerd's dependencies first: so they are
compiled where those are installed (`make install` and scripts/install-service build that way,
without build isolation) and installed as plain Python elsewhere, e.g. by a bare `pip install .`
(routerd then warns when it starts). ROUTERD_COMPILE=0 asks for plain Python."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
PYPROJECT = ROOT / "pyproject.toml"
# What was compiled, by the SHA-256 of each source: in a checkout, runtime/compiled.py refuses
# to start on compiled modules whose source has changed since.
MANIFEST = ROOT / "build" / "compiled-sources.json"


def why_not_compiled(project: dict[str, object]) -> str | None:
    if os.environ.get("ROUTERD_COMPILE", "1") == "0":
        return "ROUTERD_COMPILE=0"
    needed = ["mypy", *project["project"]["dependencies"]]  # type: ignore[index]
    for requirement in needed:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return f"{name} is not installed where routerd is built"
    return None


def main() -> None:
    with PYPROJECT.open("rb") as file:
        project = tomllib.load(file)
    reason = why_not_compiled(project)
    if reason is not None:
        print(f"routerd: building plain Python modules ({reason})", file=sys.stderr)
        setup()
        return
    from mypyc.build import mypycify  # noqa: PLC0415 - only where mypy is installed

    sources: list[str] = project["tool"]["routerd"]["compiled"]
    digests = {path: hashlib.sha256((ROOT / path).read_bytes()).hexdigest() for path in sources}
    setup(ext_modules=mypycify(sources, opt_level="3"))
    MANIFEST.parent.mkdir(exist_ok=True)
    MANIFEST.write_text(json.dumps(digests, indent=1, sort_keys=True))


main()
