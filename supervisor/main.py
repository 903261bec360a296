"""`routerd` command line: `routerd --config PATH` runs in the foreground."""

from __future__ import annotations

import argparse
import sys

from runtime import logs
from runtime.config import ConfigError, ConfigFile, read_config
from runtime.config_model import Config

DEFAULT_CONFIG = "/etc/routerd/router.yml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="routerd", description="Gorouter-compatible HTTP router (supervisor process)."
    )
    parser.add_argument(
        "--config", default=None, help=f"YAML config file (default {DEFAULT_CONFIG})"
    )
    parser.add_argument(
        "--check-config",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="validate the config (PATH, or --config) and exit",
    )
    parser.add_argument(
        "--run-dir", default=None, help="override run_dir (make run uses ./run, needing no root)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.check_config is not None:
        path = args.check_config or args.config or DEFAULT_CONFIG
        sys.exit(check_config(path))
    path = args.config or DEFAULT_CONFIG
    try:
        loaded = read_config(path)
    except ConfigError as exc:
        print(f"routerd: {exc}", file=sys.stderr)
        sys.exit(2)
    config = loaded.config
    if args.run_dir:
        config = with_run_dir(config, args.run_dir)
    logs.apply(config.logging)
    log_config_notes(loaded, path)
    from supervisor.service import run  # noqa: PLC0415 - keeps --check-config free of the runtime

    sys.exit(run(config, config_path=path))


def check_config(path: str) -> int:
    try:
        loaded = read_config(path)
    except ConfigError as exc:
        print(f"routerd: {exc}", file=sys.stderr)
        return 2
    # Warnings, not errors: Gorouter takes the same file, and so does routerd.
    if loaded.not_implemented:
        keys = ", ".join(loaded.not_implemented)
        print(f"routerd: {path}: warning: {NOT_IMPLEMENTED}: {keys}", file=sys.stderr)
    for adjustment in loaded.adjusted:
        print(f"routerd: {path}: warning: {adjustment}", file=sys.stderr)
    print(f"routerd: {path}: config is valid")
    return 0


NOT_IMPLEMENTED = "Gorouter keys accepted but not implemented (they have no effect)"


def log_config_notes(loaded: ConfigFile, path: str) -> None:
    """One warning naming every Gorouter key that has no effect, and one per adjusted value."""
    log = logs.EventLog("vcap.gorouter.supervisor")
    if loaded.not_implemented:
        log.warn("config-keys-not-implemented", config=path, keys=list(loaded.not_implemented))
    for adjustment in loaded.adjusted:
        log.warn("config-value-adjusted", config=path, adjustment=adjustment)


def with_run_dir(config: Config, run_dir: str) -> Config:
    import msgspec  # noqa: PLC0415

    return msgspec.structs.replace(config, run_dir=run_dir)
