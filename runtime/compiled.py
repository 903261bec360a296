"""routerd's per-request modules run compiled (setup.py builds them with mypyc). In a checkout,
the compiled module sits beside its source; once the source is edited, Python still imports the
old compiled one, so both processes refuse to start until it is built again, rather than run
code that is not the code on disk.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import sysconfig
from pathlib import Path

PACKAGES = ("registry", "router", "runtime", "supervisor")
ROOT = Path(__file__).resolve().parent.parent  # the checkout, or site-packages
# Written by setup.py as it compiles: each compiled source's SHA-256 at the time.
MANIFEST = Path("build") / "compiled-sources.json"


def stale_compiled(root: Path) -> list[str]:
    """Sources under `root` with a compiled module that was not built from them as they are
    now (edited since, or built without a record of it), as relative paths."""
    try:
        built_from = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        built_from = {}
    stale = []
    for package in PACKAGES:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            for built in (root / package).rglob(f"*{suffix}"):
                source = built.with_name(built.name.removesuffix(suffix) + ".py")
                if not source.exists():
                    continue
                path = source.relative_to(root).as_posix()
                if built_from.get(path) != hashlib.sha256(source.read_bytes()).hexdigest():
                    stale.append(path)
    return sorted(stale)


def compiled_problem(root: Path = ROOT) -> str | None:
    """Why the compiled modules under `root` (routerd's own) cannot be used as they are, or None.

    Only a checkout is checked: an installed routerd is written whole by pip, from one build.
    """
    installed = {Path(sysconfig.get_path(name)).resolve() for name in ("purelib", "platlib")}
    if root in installed:
        return None
    stale = stale_compiled(root)
    if not stale:
        return None
    shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
    return f"{shown} changed after being compiled: build again with `make install`"


def is_compiled() -> bool:
    """Whether the per-request modules run compiled (a plain-Python build serves the same, at
    about a third more CPU per request)."""
    spec = importlib.util.find_spec("router.upstream")
    origin = spec.origin if spec is not None else None
    return origin is not None and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
