"""`routerctl`: status, routes, register, unregister, drain and reload for a running routerd.

Exit codes (errors.py): 0 ok, 1 the router is unhealthy, 2 usage error, 3 cannot reach the router.
Every error is one line on stderr.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import click
import orjson

from supervisor.ctl import drain as draining
from supervisor.ctl import output, shm
from supervisor.ctl import target as locate
from supervisor.ctl.client import RoutesJson, StatusClient
from supervisor.ctl.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNHEALTHY,
    EXIT_USAGE,
    CtlError,
    Unhealthy,
    Unreachable,
    UsageProblem,
)
from supervisor.ctl.options import (
    DURATION,
    config_option,
    message_from_options,
    message_options,
    status_options,
)
from supervisor.ctl.routerd_process import routerd_pid, send
from supervisor.ctl.summary import Sample, request_rate, summarize
from supervisor.ctl.target import ConfigSource


def echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def warn(message: str) -> None:
    click.echo(f"routerctl: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Operate a running routerd: status, routes, register, unregister, drain, reload.

    Exit codes: 0 ok, 1 the router is unhealthy, 2 usage error, 3 cannot reach the router.
    """


# -- status ----------------------------------------------------------------------------------------


@cli.command()
@status_options
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option(
    "--interval",
    type=DURATION,
    default=1.0,
    show_default=True,
    help="measure the request rate over this long; 0: the average since start",
)
def status(
    config_path: str | None,
    url: str | None,
    user: str | None,
    password: str | None,
    timeout: float,
    as_json: bool,
    interval: float,
) -> int:
    """Health, workers, NATS, route counts, request rate, responses and 502s by cause."""
    where = locate.status_target(ConfigSource(config_path), url, user, password)
    client = StatusClient(where, timeout)
    health = client.health()
    first = Sample(client.varz(), time.monotonic())
    second = None
    if interval > 0:
        time.sleep(interval)
        second = Sample(client.varz(), time.monotonic())
    latest = (second or first).varz
    summary = summarize(where.url, health, latest, request_rate(first, second))
    if as_json:
        echo_json(summary)
    else:
        click.echo(output.status_text(summary))
    if health != 200:
        warn(f"routerd is unhealthy: /health answered {health} (state {summary['state']})")
        return EXIT_UNHEALTHY
    return EXIT_OK


# -- routes ----------------------------------------------------------------------------------------


@cli.command()
@click.argument("prefix", required=False, metavar="[HOST-OR-PREFIX]")
@status_options
@click.option("--json", "as_json", is_flag=True, help="Gorouter's /routes JSON")
@click.option("--ttl-left", is_flag=True, help="with --json: add each endpoint's ttl_left")
@click.option(
    "--from-shm",
    is_flag=True,
    help="read the shared-memory table in run_dir directly (works while HTTP is down)",
)
@click.option("--run-dir", metavar="DIR", help="with --from-shm [default: run_dir from --config]")
@click.option("--wide", is_flag=True, help="do not cut the table to 80 columns")
def routes(
    prefix: str | None,
    config_path: str | None,
    url: str | None,
    user: str | None,
    password: str | None,
    timeout: float,
    as_json: bool,
    ttl_left: bool,
    from_shm: bool,
    run_dir: str | None,
    wide: bool,
) -> int:
    """Routes and their endpoints, optionally only those starting with HOST-OR-PREFIX."""
    source = ConfigSource(config_path)
    table: RoutesJson
    if from_shm:
        snapshot = shm.read_table(locate.run_dir(source, run_dir))
        if not snapshot.writer_alive:
            warn(
                f"routerd (pid {snapshot.writer_pid}) is not running: "
                "this is the table it last published"
            )
        table = snapshot.routes
        if as_json and not ttl_left:
            table = {
                uri: [{k: v for k, v in e.items() if k != "ttl_left"} for e in endpoints]
                for uri, endpoints in table.items()
            }
    else:
        client = StatusClient(locate.status_target(source, url, user, password), timeout)
        table = client.routes(ttl_left=ttl_left or not as_json)
    table = output.filter_routes(table, prefix)
    if as_json:
        echo_json(table)
    else:
        click.echo(output.routes_table(table, wide=wide))
    return EXIT_OK


# -- register / unregister -------------------------------------------------------------------------


@cli.command()
@message_options
@click.option(
    "--heartbeat",
    type=DURATION,
    metavar="DURATION",
    help="re-register every DURATION (e.g. 20s) until Ctrl-C or SIGTERM, then unregister",
)
def register(
    config_path: str | None, nats_urls: tuple[str, ...], heartbeat: float | None, **fields: Any
) -> int:
    """Publish router.register for a backend (as a route emitter does)."""
    from supervisor.ctl import publish  # noqa: PLC0415 - nats-py (and aiohttp) only when needed

    source = ConfigSource(config_path)
    message = message_from_options(**fields)
    threshold = locate.stale_threshold(source)
    registration = publish.validated(message, threshold, for_unregister=False)
    target = locate.nats_target(source, nats_urls)
    data = publish.encode(message)
    tls = " (tls)" if registration.tls else ""
    what = f"{registration.address}{tls} for {', '.join(message.uris)}"
    if heartbeat is None:
        asyncio.run(publish.publish_once(target, publish.REGISTER, data))
        click.echo(f"registered {what}")
        return EXIT_OK
    if heartbeat <= 0:
        raise UsageProblem("--heartbeat: expected a duration > 0")
    if heartbeat >= registration.stale_threshold:
        warn(
            f"warning: --heartbeat {heartbeat:g}s is not shorter than the stale threshold "
            f"{registration.stale_threshold}s: the route will be pruned between heartbeats"
        )
    click.echo(f"{what}:")
    asyncio.run(
        publish.heartbeat(
            target, data, heartbeat, report=lambda text: click.echo(f"  {text}"), warn=warn
        )
    )
    return EXIT_OK


@cli.command()
@message_options
def unregister(config_path: str | None, nats_urls: tuple[str, ...], **fields: Any) -> int:
    """Publish router.unregister for a backend."""
    from supervisor.ctl import publish  # noqa: PLC0415 - nats-py (and aiohttp) only when needed

    source = ConfigSource(config_path)
    message = message_from_options(**fields)
    registration = publish.validated(message, locate.stale_threshold(source), for_unregister=True)
    target = locate.nats_target(source, nats_urls)
    asyncio.run(publish.publish_once(target, publish.UNREGISTER, publish.encode(message)))
    click.echo(f"unregistered {registration.address} for {', '.join(message.uris)}")
    return EXIT_OK


# -- drain -----------------------------------------------------------------------------------------


@cli.command()
@config_option
@click.option(
    "--run-dir", metavar="DIR", help="where routerd.lock is [default: run_dir from --config]"
)
@click.option("--url", metavar="URL", help="status server to follow /health on")
@click.option("--user", envvar="ROUTERCTL_USER", help="status user (status.user)")
@click.option("--password", envvar="ROUTERCTL_PASSWORD", help="status password (status.pass)")
@click.option(
    "--timeout",
    type=DURATION,
    help=f"give up after this long [default: drain_wait + drain_timeout + {draining.MARGIN:g}s]",
)
def drain(
    config_path: str | None,
    run_dir: str | None,
    url: str | None,
    user: str | None,
    password: str | None,
    timeout: float | None,
) -> int:
    """Drain routerd (SIGUSR1) and wait until it has exited.

    /health answers 503 at once; after drain_wait the router stops accepting, in-flight requests
    get up to drain_timeout, and routerd exits 0. Under systemd, `systemctl stop routerd` does the
    same (KillSignal=SIGUSR1); after `routerctl drain` the service stays stopped.
    """
    source = ConfigSource(config_path)
    pid = routerd_pid(locate.run_dir(source, run_dir))
    drain_wait, drain_timeout = locate.drain_budget(source)
    budget = timeout if timeout is not None else drain_wait + drain_timeout + draining.MARGIN
    client = _optional_client(source, url, user, password)
    state = _router_state(client)
    if state == "starting":
        raise Unhealthy("routerd is still starting: it ignores a drain until it serves")
    if state in ("draining", "stopping"):
        click.echo(f"routerd (pid {pid}) is already {state}; following it")
    else:
        send(pid, signal.SIGUSR1)
        click.echo(
            f"sent SIGUSR1 to routerd (pid {pid}): drain_wait {drain_wait:g}s, "
            f"then up to {drain_timeout:g}s for in-flight requests"
        )

    def health() -> int | None:
        if client is None:
            return None
        try:
            return client.health()
        except Unreachable:
            return None

    elapsed = draining.follow(pid, health, budget, report=lambda text: click.echo(f"  {text}"))
    click.echo(f"routerd (pid {pid}) exited after {elapsed:.1f}s: drain complete")
    return EXIT_OK


def _optional_client(
    source: ConfigSource, url: str | None, user: str | None, password: str | None
) -> StatusClient | None:
    """A status client when the status server's address is known; drain works without one."""
    try:
        return StatusClient(locate.status_target(source, url, user, password), timeout=1.0)
    except UsageProblem:
        return None


def _router_state(client: StatusClient | None) -> str | None:
    if client is None:
        return None
    try:
        state = client.varz().get("state")
    except CtlError:
        return None
    return state if isinstance(state, str) else None


# -- reload ----------------------------------------------------------------------------------------


@cli.command()
@config_option
@click.option(
    "--run-dir", metavar="DIR", help="where routerd.lock is [default: run_dir from --config]"
)
def reload(config_path: str | None, run_dir: str | None) -> int:
    """Reload routerd (SIGHUP): re-read its config and reopen the access log.

    The same as `systemctl reload routerd`; logrotate uses it after renaming the access log.
    Keys that need a restart are reported in routerd's `config-reloaded` log line.
    """
    pid = routerd_pid(locate.run_dir(ConfigSource(config_path), run_dir))
    send(pid, signal.SIGHUP)
    click.echo(f"sent SIGHUP to routerd (pid {pid}): it re-reads its config and reopens its logs")
    return EXIT_OK


# -- entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run routerctl; every failure is one line on stderr and an exit code, never a traceback."""
    try:
        result = cli.main(args=argv, prog_name="routerctl", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help(), err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "routerctl"
        warn(f"{exc.format_message()} (see '{where} --help')")
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        warn(exc.format_message())
        sys.exit(exc.exit_code)
    except CtlError as exc:
        warn(exc.message)
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # `routerctl routes | head`: the reader left; nothing more to say.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        sys.exit(EXIT_OK)
    sys.exit(result if isinstance(result, int) else EXIT_OK)


if __name__ == "__main__":
    main()
