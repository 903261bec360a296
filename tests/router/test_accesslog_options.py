"""Gorouter's access log options, line for line as Gorouter v0.317 writes them."""

from __future__ import annotations

import hashlib

import pytest

from router.accesslog import PLAIN, Timestamps
from router.accesslog_options import LineOptions, line_format, redacted
from router.exchange import Exchange
from runtime.config import load_config_text
from tests.router.test_accesslog_line import exchange

HEAD = 'app.example.com - [2023-11-14T22:13:20.250000000Z] "GET /items/7?q=1 HTTP/1.1" '
MIDDLE = (
    'x_forwarded_proto:"http" vcap_request_id:"1b4e28ba-2fa1-41d2-883f-0016d3cca427" '
    'response_time:0.003121 gorouter_time:0.000400 app_id:"app-guid-1" app_index:"2" '
    'instance_id:"inst-1"'
)


def line(options: LineOptions, ex: Exchange, elapsed: float = 0.003121) -> str:
    take, format_line = line_format(options)
    return format_line(take(ex, 5, 42, elapsed), Timestamps())


class FakeTransport:
    def __init__(self, sockname: tuple[str, int]) -> None:
        self.sockname = sockname

    def get_extra_info(self, name: str) -> object:
        return self.sockname if name == "sockname" else None


class FakeConn:
    def __init__(self, sockname: tuple[str, int]) -> None:
        self.transport = FakeTransport(sockname)


def test_gorouters_defaults_take_the_plain_functions() -> None:
    assert line_format(LineOptions()) is PLAIN
    assert LineOptions.from_config(load_config_text("")) == LineOptions()


def test_options_are_read_from_gorouters_keys() -> None:
    config = load_config_text(
        "logging:\n  redact_query_params: hash\n  disable_log_source_ip: true\n"
        "  disable_log_forwarded_for: true\n  enable_attempts_details: true\n"
        "  extra_access_log_fields: [local_address]\n"
        "extra_headers_to_log: [X-Foo]\n"
    )
    assert LineOptions.from_config(config) == LineOptions(
        "hash", True, True, True, True, ("X-Foo",)
    )


@pytest.mark.parametrize(
    ("method", "target", "mode", "logged"),
    [
        ("GET", "/p?a=1&b=2", "none", "/p?a=1&b=2"),
        ("GET", "/p?a=1&b=2", "all", "/p"),
        ("GET", "/?a=1&b=2", "hash", "/?hash=d53cf64e768f4ef09c806bbe12258c78211b2690"),
        # Everything after the first "?" is the query, a "#" too (Gorouter's RawQuery).
        ("GET", "/p?x=%zz&y=1#frag", "hash", "/p?hash=4fff794c83b540b5cda58719ea882c29021f4ef8"),
        ("GET", "/p?", "all", "/p?"),  # no query to redact: logged as sent
        ("GET", "/p", "hash", "/p"),
        ("POST", "/p?a=1", "all", "/p?a=1"),  # GET only
        ("HEAD", "/p?a=1", "hash", "/p?a=1"),
    ],
)
def test_query_redaction_is_gorouters(method: str, target: str, mode: str, logged: str) -> None:
    assert redacted(method, target, mode) == logged


def test_hashed_query_in_the_line() -> None:
    digest = hashlib.sha1(b"q=1").hexdigest()
    text = line(LineOptions(redact_query_params="hash"), exchange())
    assert text.startswith(
        "app.example.com - [2023-11-14T22:13:20.250000000Z] "
        f'"GET /items/7?hash={digest} HTTP/1.1" 200 5 42 '
    )


def test_source_ip_and_forwarded_for_are_dashes_when_disabled() -> None:
    text = line(LineOptions(hide_source_ip=True, hide_forwarded_for=True), exchange())
    assert text == (
        f'{HEAD}200 5 42 "-" "curl/8.0" "-" "10.0.0.5:8080" x_forwarded_for:"-" '
        f'{MIDDLE} x_cf_routererror:"-"\n'
    )
    only_ip = line(LineOptions(hide_source_ip=True), exchange())
    assert ' "curl/8.0" "-" "10.0.0.5:8080" x_forwarded_for:"10.1.2.3, 127.0.0.1" ' in only_ip


def test_attempts_details_of_an_answered_request() -> None:
    text = line(LineOptions(attempts_details=True), exchange())
    assert text.endswith(
        f'{MIDDLE} failed_attempts:0 failed_attempts_time:"-" dns_time:"-" dial_time:"-" '
        'tls_time:"-" backend_time:0.002721 x_cf_routererror:"-"\n'
    )


def test_attempts_details_after_failed_attempts() -> None:
    ex = exchange()
    ex.failed_attempts = 2
    ex.backend_started = 100.0015  # the answering attempt began 1.5 ms in
    text = line(LineOptions(attempts_details=True), ex, elapsed=0.004)
    assert ' failed_attempts:2 failed_attempts_time:0.001500 dns_time:"-" ' in text
    assert ' backend_time:0.002500 x_cf_routererror:"-"\n' in text


def test_attempts_details_when_no_attempt_answered() -> None:
    ex = exchange(routed=False)
    ex.failed_attempts = 3
    ex.router_error = "endpoint_failure (dial tcp 10.0.0.5:8080: connect: connection refused)"
    text = line(LineOptions(attempts_details=True), ex, elapsed=0.0009)
    assert text.endswith(
        ' failed_attempts:3 failed_attempts_time:0.000900 dns_time:"-" dial_time:"-" '
        'tls_time:"-" backend_time:"-" x_cf_routererror:"endpoint_failure (dial tcp '
        '10.0.0.5:8080: connect: connection refused)"\n'
    )


def test_local_address_comes_before_the_router_error() -> None:
    ex = exchange()
    ex.conn = FakeConn(("10.0.0.9", 41000))  # type: ignore[assignment]
    text = line(LineOptions(attempts_details=True, local_address=True), ex)
    assert text.endswith(
        ' backend_time:0.002721 local_address:"10.0.0.9:41000" x_cf_routererror:"-"\n'
    )
    ex.conn = FakeConn(("::1", 41000))  # type: ignore[assignment]
    assert ' local_address:"[::1]:41000" x_cf_routererror:' in line(
        LineOptions(local_address=True), ex
    )
    answered = exchange(routed=False)
    assert ' local_address:"-" x_cf_routererror:"unknown_route"\n' in line(
        LineOptions(local_address=True), answered
    )


def test_extra_headers_are_appended_as_gorouter_names_them() -> None:
    ex = exchange()
    ex.request.raw_headers = [
        (b"x-foo", b"one"),
        (b"X-Foo", b"two"),  # Gorouter logs the first value
        (b"X-Bar-Baz", b'q"uo\\te'),
    ]
    text = line(LineOptions(extra_headers=("X-Foo", "x-bar-baz", "Missing-One")), ex)
    assert text.endswith(
        'x_cf_routererror:"-" x_foo:"one" x_bar_baz:"q\\"uo\\\\te" missing_one:"-"\n'
    )


def test_a_router_error_holding_the_field_name_is_not_split() -> None:
    ex = exchange(routed=False)
    ex.router_error = 'x x_cf_routererror:"y'
    text = line(LineOptions(attempts_details=True), ex)
    assert text.endswith(' backend_time:"-" x_cf_routererror:"x x_cf_routererror:\\"y"\n')
