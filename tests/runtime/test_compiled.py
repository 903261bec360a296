"""The per-request modules run compiled, and a checkout whose sources changed after they were
compiled is refused rather than run as the old code."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
from pathlib import Path

from runtime.compiled import MANIFEST, compiled_problem, is_compiled, stale_compiled

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def module(root: Path, name: str, compiled: bool = True, edited: bool = False) -> None:
    """router/<name>.py; with `compiled`, its compiled module and its line in the manifest,
    which `edited` makes the source differ from."""
    source = root / "router" / f"{name}.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("x = 1\n")
    if not compiled:
        return
    source.with_name(name + SUFFIX).write_bytes(b"")
    manifest = root / MANIFEST
    manifest.parent.mkdir(exist_ok=True)
    built_from = json.loads(manifest.read_text()) if manifest.exists() else {}
    built_from[f"router/{name}.py"] = hashlib.sha256(source.read_bytes()).hexdigest()
    manifest.write_text(json.dumps(built_from))
    if edited:
        source.write_text("x = 2\n")


def test_make_test_runs_the_compiled_modules() -> None:
    # `make install` compiles them; a plain-Python build would pass every other test slower.
    assert is_compiled()


def test_a_source_edited_after_compiling_is_stale(tmp_path: Path) -> None:
    module(tmp_path, "edited", edited=True)
    module(tmp_path, "fresh")
    module(tmp_path, "plain", compiled=False)
    assert stale_compiled(tmp_path) == ["router/edited.py"]
    problem = compiled_problem(tmp_path)
    assert (
        problem == "router/edited.py changed after being compiled: build again with `make install`"
    )


def test_many_stale_sources_are_counted_after_the_first_three(tmp_path: Path) -> None:
    for index in range(5):
        module(tmp_path, f"m{index}", edited=True)
    assert compiled_problem(tmp_path) == (
        "router/m0.py, router/m1.py, router/m2.py and 2 more changed after being compiled: "
        "build again with `make install`"
    )


def test_nothing_compiled_is_nothing_stale(tmp_path: Path) -> None:
    module(tmp_path, "plain", compiled=False)
    assert compiled_problem(tmp_path) is None


def test_a_compiled_module_without_a_record_of_its_source_is_stale(tmp_path: Path) -> None:
    # Left from an earlier build, e.g. beside a later plain-Python one.
    module(tmp_path, "old")
    (tmp_path / MANIFEST).unlink()
    assert stale_compiled(tmp_path) == ["router/old.py"]
