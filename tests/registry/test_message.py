"""`router.register` messages: Gorouter's example decodes whole; anything else is a Rejection."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.backend_host import is_backend_host
from registry.message import (
    MAX_FIELD_LENGTH,
    MAX_MESSAGE_BYTES,
    MAX_TAGS,
    MAX_URI_LENGTH,
    MAX_URIS,
    TLS_WITHOUT_SAN,
    UNKNOWN_LOAD_BALANCING,
    UNKNOWN_OPTIONS,
    Caveat,
    Registration,
    RegistryMessage,
    parse_registration,
)
from registry.rejection import Rejection
from registry.routekey import RouteKey
from tests.registry.tables import message

# The example message from Gorouter's README, byte for byte.
README_EXAMPLE = (
    b'{"host":"127.0.0.1","port":4567,"uris":["my_first_url.localhost.routing.cf-app.com",'
    b'"my_second_url.localhost.routing.cf-app.com"],"tags":{"another_key":"another_value",'
    b'"some_key":"some_value"},"app":"some_app_guid","stale_threshold_in_seconds":120,'
    b'"private_instance_id":"some_app_instance_id","private_instance_index":"0",'
    b'"server_cert_domain_san":"some_subject_alternative_name"}'
)
# Non-ASCII text, so that some prefixes end in the middle of a UTF-8 sequence.
UNICODE_EXAMPLE = message("cafe.example.com/ünï", tags={"owner": "Zoë ☃ 雪"})


def parse(data: bytes, for_unregister: bool = False) -> Registration | Rejection:
    return parse_registration(data, 120, for_unregister=for_unregister)


def accepted(data: bytes) -> Registration:
    result = parse(data)
    assert isinstance(result, Registration), result
    return result


def rejected(data: bytes) -> Rejection:
    result = parse(data)
    assert isinstance(result, Rejection), result
    assert result.reason
    assert not result  # a Rejection is falsy, so callers can write `if not result`
    return result


def test_readme_example_decodes_whole() -> None:
    reg = accepted(README_EXAMPLE)
    assert reg.message == RegistryMessage(
        host="127.0.0.1",
        port=4567,
        uris=[
            "my_first_url.localhost.routing.cf-app.com",
            "my_second_url.localhost.routing.cf-app.com",
        ],
        tags={"another_key": "another_value", "some_key": "some_value"},
        app="some_app_guid",
        stale_threshold_in_seconds=120,
        private_instance_id="some_app_instance_id",
        private_instance_index="0",
        server_cert_domain_san="some_subject_alternative_name",
    )
    assert reg.routes == (
        RouteKey("my_first_url.localhost.routing.cf-app.com"),
        RouteKey("my_second_url.localhost.routing.cf-app.com"),
    )
    assert (reg.address, reg.tls, reg.stale_threshold, reg.load_balancing) == (
        "127.0.0.1:4567",
        False,
        120,
        "",
    )


def test_message_encodes_back_to_the_same_fields() -> None:
    reg = accepted(README_EXAMPLE)
    assert json.loads(msgspec.json.encode(reg.message)) == json.loads(README_EXAMPLE)


@pytest.mark.parametrize("data", [README_EXAMPLE, UNICODE_EXAMPLE], ids=["readme", "unicode"])
def test_every_proper_prefix_is_rejected_never_raised(data: bytes) -> None:
    # Feed the message one byte at a time, as a truncated NATS payload could arrive.
    received = b""
    for byte in data:
        rejected(received)
        received += bytes([byte])
    assert received == data
    accepted(received)


def test_unicode_example_is_accepted_and_escaped() -> None:
    reg = accepted(UNICODE_EXAMPLE)
    assert reg.routes == (RouteKey("cafe.example.com", "/%c3%bcn%c3%af"),)
    assert reg.message.tags == {"owner": "Zoë ☃ 雪"}


def _fields(**fields: object) -> bytes:
    body: dict[str, object] = {"host": "10.0.0.1", "port": 8080, "uris": ["app.example.com"]}
    body.update(fields)
    return msgspec.json.encode({key: value for key, value in body.items() if value is not None})


INVALID = {
    "bad JSON": (b'{"host": "10.0.0.1", port: 80}', "invalid JSON"),
    "empty body": (b"", "invalid JSON"),
    "trailing garbage": (_fields() + b"}", "invalid JSON"),
    "invalid UTF-8": (b'{"host": "10.0.0.\xff", "port": 80, "uris": ["a.com"]}', "invalid JSON"),
    "host not a string": (_fields(host=10), "$.host"),
    "port as a string": (_fields(port="8080"), "$.port"),
    "negative port": (_fields(port=-1), "$.port"),
    "port above 65535": (_fields(port=65536), "$.port"),
    "tls_port above 65535": (_fields(tls_port=70000), "$.tls_port"),
    "tags not strings": (_fields(tags={"index": 1}), "$.tags"),
    "uris not a list": (_fields(uris="app.example.com"), "$.uris"),
    "negative stale threshold": (_fields(stale_threshold_in_seconds=-5), "$.stale_threshold"),
    "missing host": (_fields(host=None), "host is required"),
    "missing port and tls_port": (_fields(port=None), "port or tls_port is required"),
    "port 0": (_fields(port=0), "port or tls_port is required"),
    "missing uris": (_fields(uris=None), "uris must list at least one route"),
    "empty uris": (_fields(uris=[]), "uris must list at least one route"),
    "too many uris": (
        _fields(uris=[f"app{i}.example.com" for i in range(MAX_URIS + 1)]),
        f"too many uris: {MAX_URIS + 1}",
    ),
    "empty uri": (_fields(uris=["app.example.com", ""]), "uris must be non-empty"),
    "uri too long": (_fields(uris=["app.example.com/" + "a" * 5000]), "at most 2048"),
    "http route service": (
        _fields(route_service_url="http://rs.example.com"),
        "route_service_url must be https",
    ),
    # A known option of the wrong JSON type fails Go's json.Unmarshal, so Gorouter drops it too.
    "options.loadbalancing not a string": (_fields(options={"loadbalancing": 5}), "$.options"),
    "options.hash_balance not a number": (_fields(options={"hash_balance": "2"}), "$.options"),
    "options not an object": (_fields(options="round-robin"), "$.options"),
    "uri with a scheme": (_fields(uris=["https://app.example.com"]), "must not have a scheme"),
    "uri with an invalid host": (_fields(uris=["app_!.example.com"]), "has an invalid host"),
    "wildcard not leftmost": (_fields(uris=["app.*.example.com"]), "has an invalid host"),
    "uri with no host": (_fields(uris=["/just/a/path"]), "has no host"),
    "JSON array": (b'[{"host": "10.0.0.1", "port": 80, "uris": ["a.com"]}]', "expected `object`"),
    "JSON string": (b'"router.register"', "expected `object`"),
    "null": (b"null", "expected `object`"),
}
OVERSIZED = _fields(tags={"padding": "x" * MAX_MESSAGE_BYTES})
INVALID["oversized message"] = (
    OVERSIZED,
    f"message too large: {len(OVERSIZED)} bytes (limit {MAX_MESSAGE_BYTES})",
)


LIMITS = {
    "host with a port": (_fields(host="127.0.0.1:9002"), "host_invalid"),
    "host with spaces": (_fields(host="not a host!"), "host_invalid"),
    "host with brackets": (_fields(host="[::1]"), "host_invalid"),
    "host that is a bad IPv4 address": (_fields(host="10.0.0.256"), "host_invalid"),
    "host with an underscore": (_fields(host="app_1.internal"), "host_invalid"),
    "host label over 63": (_fields(host="a" * 64 + ".internal"), "host_invalid"),
    "host over 255": (_fields(host="a." * 200 + "com"), "field_too_long"),
    "app of 1 MiB": (_fields(app="a" * ((1 << 20) - 100)), "field_too_long"),
    "app over 255": (_fields(app="a" * (MAX_FIELD_LENGTH + 1)), "field_too_long"),
    "instance id over 255": (_fields(private_instance_id="i" * 256), "field_too_long"),
    "instance index over 255": (_fields(private_instance_index="1" * 256), "field_too_long"),
    "san over 255": (_fields(server_cert_domain_san="s" * 256), "field_too_long"),
    "segment over 255": (_fields(isolation_segment="s" * 256), "field_too_long"),
    "zone over 255": (_fields(availability_zone="z" * 256), "field_too_long"),
    "route service url over 2048": (
        _fields(route_service_url="https://rs.example.com/" + "p" * 2048),
        "field_too_long",
    ),
    "too many tags": (_fields(tags={f"k{i}": "v" for i in range(MAX_TAGS + 1)}), "too_many_tags"),
    "tag key over 255": (_fields(tags={"k" * 256: "v"}), "field_too_long"),
    "tag value over 1024": (_fields(tags={"k": "v" * 1025}), "field_too_long"),
    "uri over 2048": (_fields(uris=["a.example.com/" + "p" * MAX_URI_LENGTH]), "uri_invalid"),
    "bad JSON": (b"{", "invalid_json"),
    "wrong type": (_fields(port="80"), "invalid_field"),
    "too large": (OVERSIZED, "too_large"),
    "no host": (_fields(host=None), "host_missing"),
    "no uris": (_fields(uris=None), "uris_missing"),
    "no port": (_fields(port=None), "port_missing"),
}


@pytest.mark.parametrize(("data", "code"), LIMITS.values(), ids=LIMITS.keys())
def test_limits_reject_with_a_code_and_a_bounded_reason(data: bytes, code: str) -> None:
    result = rejected(data)
    assert result.code == code
    assert len(result.reason) <= 300  # it quotes no more than a preview of the value


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "fd00::5",
        "::1",
        "::ffff:10.0.0.1",
        "app.internal",
        "APP-1.Example.COM",
        "app.example.com.",
        "localhost",
        "1a.example.com",
        "a" * 63 + ".example.com",
    ],
)
def test_ip_addresses_and_dns_names_are_accepted_hosts(host: str) -> None:
    reg = accepted(_fields(host=host))
    assert reg.address == (f"[{host}]:8080" if ":" in host else f"{host}:8080")


LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", fullmatch=True)


@given(
    st.lists(LABEL, min_size=1, max_size=4),
    st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,20}", fullmatch=True),
)
def test_every_rfc_1123_name_is_a_valid_host(labels: list[str], top: str) -> None:
    name = ".".join([*labels, top])
    assert is_backend_host(name) is (len(name) <= 253)


@given(st.ip_addresses())
def test_every_ip_address_is_a_valid_host(address: object) -> None:
    assert is_backend_host(str(address))


@given(LABEL, st.integers(1, 65535))
def test_a_name_with_a_port_is_never_a_valid_host(label: str, port: int) -> None:
    assert not is_backend_host(f"{label}.example.com:{port}")


@given(st.text(max_size=40), st.sampled_from(" !/_@%[]"))
def test_a_character_of_neither_names_nor_addresses_is_refused(text: str, bad: str) -> None:
    assert not is_backend_host(text + bad + text)


@pytest.mark.parametrize(("data", "reason"), INVALID.values(), ids=INVALID.keys())
def test_invalid_messages_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    result = rejected(data)
    assert reason.lower() in result.reason.lower()
    assert "\n" not in result.reason  # it goes into one log line


def test_unknown_fields_are_ignored_as_gorouter_does() -> None:
    reg = accepted(_fields(future_field={"nested": [1, 2]}, another=3))
    assert reg.routes == (RouteKey("app.example.com"),)


def test_tls_port_wins_over_port() -> None:
    reg = accepted(_fields(port=8080, tls_port=8443, server_cert_domain_san="app.internal"))
    assert (reg.port, reg.tls, reg.address) == (8443, True, "10.0.0.1:8443")


def test_tls_port_alone_is_enough() -> None:
    reg = accepted(_fields(port=None, tls_port=8443, server_cert_domain_san="app.internal"))
    assert (reg.port, reg.tls) == (8443, True)


def test_unregister_needs_no_server_cert_domain_san() -> None:
    reg = parse(_fields(tls_port=8443), for_unregister=True)
    assert isinstance(reg, Registration)
    assert (reg.address, reg.caveats) == ("10.0.0.1:8443", ())


def events(reg: Registration) -> list[str]:
    return [caveat.event for caveat in reg.caveats]


def test_tls_port_without_san_is_registered_with_a_caveat_as_gorouter_does() -> None:
    reg = accepted(_fields(port=None, tls_port=8443))
    assert (reg.address, reg.tls, reg.message.server_cert_domain_san) == ("10.0.0.1:8443", True, "")
    assert reg.caveats == (
        Caveat(
            TLS_WITHOUT_SAN,
            "tls_port without server_cert_domain_san: the certificate is verified against "
            "the host '10.0.0.1'",
        ),
    )


@pytest.mark.parametrize("algorithm", ["random", "ROUND-ROBIN", "hash-ring", " "])
def test_unknown_loadbalancing_is_registered_keeping_the_pool_algorithm(algorithm: str) -> None:
    reg = accepted(_fields(options={"loadbalancing": algorithm}))
    assert reg.routes == (RouteKey("app.example.com"),)
    assert reg.load_balancing == ""  # the pool's algorithm stays what it is
    assert events(reg) == [UNKNOWN_LOAD_BALANCING]
    assert repr(algorithm) in reg.caveats[0].reason


def test_unknown_loadbalancing_does_not_stop_an_unregister() -> None:
    reg = parse(_fields(options={"loadbalancing": "random"}), for_unregister=True)
    assert isinstance(reg, Registration)
    assert (reg.load_balancing, reg.caveats) == ("", ())


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"weight": 3}, "'weight'"),
        ({"loadbalancing": "least-connection", "sticky": True, "zone": "z1"}, "'sticky', 'zone'"),
        (
            {f"k{i}": i for i in range(10)},
            "'k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7' and 2 more",
        ),
    ],
)
def test_unknown_option_keys_are_ignored_with_a_caveat(
    options: dict[str, object], named: str
) -> None:
    reg = accepted(_fields(options=options))
    assert reg.routes == (RouteKey("app.example.com"),)
    assert reg.load_balancing == options.get("loadbalancing", "")
    assert events(reg) == [UNKNOWN_OPTIONS]
    assert reg.caveats[0].reason.startswith(f"options {named} ignored")


def test_known_options_and_no_options_carry_no_caveat() -> None:
    assert accepted(_fields()).caveats == ()
    known = {"loadbalancing": "round-robin", "hash_header": "X-Tenant", "hash_balance": 1.5}
    assert accepted(_fields(options=known)).caveats == ()
    # "options" only as a value, not a key: the second look finds no options object.
    assert accepted(_fields(app="options", tags={"k": '"options"'})).caveats == ()


def test_every_caveat_is_listed_once() -> None:
    reg = accepted(_fields(port=None, tls_port=8443, options={"loadbalancing": "x", "y": 1}))
    assert events(reg) == [TLS_WITHOUT_SAN, UNKNOWN_LOAD_BALANCING, UNKNOWN_OPTIONS]


@pytest.mark.parametrize(
    ("in_message", "effective"),
    [(None, 120), (0, 120), (30, 30), (1, 1), (119, 119), (120, 120), (121, 120), (3600, 120)],
)
def test_stale_threshold_in_seconds_only_shortens(in_message: int | None, effective: int) -> None:
    assert accepted(_fields(stale_threshold_in_seconds=in_message)).stale_threshold == effective


def test_uris_are_normalised_and_deduplicated() -> None:
    reg = accepted(
        _fields(uris=["App.Example.COM", "app.example.com:8080", "app.example.com.", "a.com/X/"])
    )
    assert reg.routes == (RouteKey("app.example.com"), RouteKey("a.com", "/x"))


@pytest.mark.parametrize("algorithm", ["round-robin", "least-connection", "hash"])
def test_options_loadbalancing_is_carried(algorithm: str) -> None:
    assert accepted(_fields(options={"loadbalancing": algorithm})).load_balancing == algorithm


@pytest.mark.parametrize(
    ("options", "effective"),
    [
        ({"lb_algo": "least-connection"}, "least-connection"),  # Gorouter v0.317's name
        ({"lb_algo": "least-connection", "loadbalancing": "round-robin"}, "round-robin"),
        ({"lb_algo": "least-connection", "loadbalancing": ""}, "least-connection"),
    ],
    ids=["lb_algo-alone", "loadbalancing-wins", "empty-loadbalancing"],
)
def test_options_lb_algo_is_read_when_loadbalancing_is_absent(
    options: dict[str, str], effective: str
) -> None:
    reg = accepted(_fields(options=options))
    assert (reg.load_balancing, reg.caveats) == (effective, ())


def test_an_unknown_lb_algo_is_named_under_its_own_key() -> None:
    reg = accepted(_fields(options={"lb_algo": "random"}))
    assert reg.load_balancing == ""
    assert events(reg) == [UNKNOWN_LOAD_BALANCING]
    assert reg.caveats[0].reason.startswith("options.lb_algo 'random' is not one of")


def test_https_route_service_is_accepted() -> None:
    reg = accepted(_fields(route_service_url="https://rs.example.com/path"))
    assert reg.message.route_service_url == "https://rs.example.com/path"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
FIELD_NAMES = st.sampled_from(
    [*RegistryMessage.__struct_fields__, "options", "loadbalancing", "unknown"]
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=8))
def test_any_json_object_is_accepted_or_rejected_never_raised(body: dict[str, object]) -> None:
    result = parse(msgspec.json.encode(body))
    assert isinstance(result, Registration | Rejection)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_rejected_never_raised(data: bytes) -> None:
    result = parse(README_EXAMPLE[: len(README_EXAMPLE) // 2] + data)
    assert isinstance(result, Registration | Rejection)
    assert isinstance(parse(data), Registration | Rejection)


def test_hash_options_are_carried_with_the_hash_algorithm() -> None:
    options = {"loadbalancing": "hash", "hash_header": "X-Tenant", "hash_balance": 1.5}
    reg = accepted(_fields(options=options))
    assert (reg.load_balancing, reg.hash_header, reg.hash_balance) == ("hash", "X-Tenant", 1.5)
    assert reg.caveats == ()


@pytest.mark.parametrize("algorithm", ["", "round-robin", "least-connection"])
def test_hash_options_without_the_hash_algorithm_are_dropped(algorithm: str) -> None:
    # Gorouter's route.NewEndpoint keeps them only with loadbalancing "hash".
    options = {"loadbalancing": algorithm, "hash_header": "X-Tenant", "hash_balance": 2}
    reg = accepted(_fields(options=options))
    assert (reg.load_balancing, reg.hash_header, reg.hash_balance) == (algorithm, "", 0.0)


def test_hash_without_a_header_is_registered_with_a_caveat() -> None:
    reg = accepted(_fields(options={"loadbalancing": "hash", "hash_balance": 2}))
    assert (reg.load_balancing, reg.hash_header, reg.hash_balance) == ("hash", "", 0.0)
    assert events(reg) == ["hash-routing-properties-missing"]
