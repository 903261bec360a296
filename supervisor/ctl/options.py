"""routerctl's shared options: where the router is, and the fields of a Gorouter message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from registry.message import RegistryMessage
from runtime.durations import parse_duration
from supervisor.main import DEFAULT_CONFIG

F = TypeVar("F", bound=Callable[..., Any])


class DurationType(click.ParamType[float]):
    """Seconds, or a Go-style duration such as `20s`, `500ms`, `1m30s`."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return float(parse_duration(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_path",
        metavar="PATH",
        envvar="ROUTERCTL_CONFIG",
        help=f"routerd's config file [default: {DEFAULT_CONFIG}]",
    )(function)


def status_options(function: F) -> F:
    """Where the status server is: from --config, or given outright."""
    for option in reversed(
        [
            click.option("--url", metavar="URL", help="status server, e.g. http://127.0.0.1:8080"),
            click.option("--user", envvar="ROUTERCTL_USER", help="status user (status.user)"),
            click.option(
                "--password", envvar="ROUTERCTL_PASSWORD", help="status password (status.pass)"
            ),
            click.option(
                "--timeout",
                type=DURATION,
                default=5.0,
                show_default=True,
                help="per-request timeout",
            ),
        ]
    ):
        function = option(function)
    return config_option(function)


def message_options(function: F) -> F:
    """The fields of Gorouter's router.register / router.unregister message."""
    for option in reversed(
        [
            click.option("--host", required=True, help="backend address the router connects to"),
            click.option("--port", type=click.IntRange(1, 65535), help="backend plain-HTTP port"),
            click.option(
                "--uri",
                "uris",
                multiple=True,
                required=True,
                help="route, e.g. app.example.com or app.example.com/api (repeatable)",
            ),
            click.option(
                "--tls-port", type=click.IntRange(1, 65535), help="backend TLS port (needs --san)"
            ),
            click.option("--san", default="", help="server_cert_domain_san of the backend's cert"),
            click.option("--app", default="", help="application GUID"),
            click.option("--instance-id", default="", help="private_instance_id"),
            click.option("--instance-index", default="", help="private_instance_index"),
            click.option(
                "--stale-threshold",
                type=DURATION,
                help="stale_threshold_in_seconds (can only shorten the router's own)",
            ),
            click.option(
                "--tag",
                "tags",
                multiple=True,
                metavar="KEY=VALUE",
                callback=_parse_tags,
                help="tag (repeatable)",
            ),
            click.option("--route-service-url", default="", help="https URL of a route service"),
            click.option(
                "--nats-url",
                "nats_urls",
                multiple=True,
                metavar="URL",
                help="NATS server, e.g. nats://user:pass@127.0.0.1:4222 (repeatable) "
                "[default: nats.hosts from --config]",
            ),
        ]
    ):
        function = option(function)
    return config_option(function)


def _parse_tags(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    tags = {}
    for value in values:
        key, sep, tag = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", ctx, param)
        tags[key] = tag
    return tags


def message_from_options(
    host: str,
    port: int | None,
    uris: tuple[str, ...],
    tls_port: int | None,
    san: str,
    app: str,
    instance_id: str,
    instance_index: str,
    stale_threshold: float | None,
    tags: dict[str, str],
    route_service_url: str,
) -> RegistryMessage:
    return RegistryMessage(
        host=host,
        port=port or 0,
        tls_port=tls_port or 0,
        uris=list(uris),
        tags=tags,
        app=app,
        private_instance_id=instance_id,
        private_instance_index=instance_index,
        stale_threshold_in_seconds=round(stale_threshold or 0),
        route_service_url=route_service_url,
        server_cert_domain_san=san,
    )
