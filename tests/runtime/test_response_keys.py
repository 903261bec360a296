"""The response keys' Gorouter meanings and the checks Gorouter makes on them at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import ConfigError, load_config_text
from runtime.config_model import MAX_RESPONSE_HEADER_BYTES
from tests.support.routerd import run_routerd


def test_gorouters_defaults() -> None:
    config = load_config_text("endpoint_dial_timeout: 3s\n")
    assert config.max_response_header_bytes == MAX_RESPONSE_HEADER_BYTES == 10 << 20
    assert config.max_response_headers == 0
    assert config.upgrade_dial_timeout == 3.0
    assert not config.keep_alive_100_continue_requests and not config.disable_http
    assert config.html_error_template_file == ""


@pytest.mark.parametrize("value", [0, -1])
def test_zero_or_less_response_header_bytes_is_gos_limit(value: int) -> None:
    config = load_config_text(f"max_response_header_bytes: {value}\n")
    assert config.max_response_header_bytes == 10 << 20


def test_websocket_dial_timeout_when_set() -> None:
    assert load_config_text("websocket_dial_timeout: 500ms\n").upgrade_dial_timeout == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "disable_http: true\n",
            "disable_http: expected enable_ssl: true when the plain-HTTP listener is disabled",
        ),
        (
            "http_rewrite:\n  responses:\n    add_headers_if_not_present:\n"
            "      - {name: 'Bad Name', value: x}\n",
            "http_rewrite.responses.add_headers_if_not_present[0]: expected a header name",
        ),
        (
            "http_rewrite:\n  responses:\n    remove_headers:\n      - {name: ''}\n",
            "http_rewrite.responses.remove_headers[0]: expected a header name",
        ),
        (
            "html_error_template_file: /nonexistent/error.html\n",
            "html_error_template_file: cannot read /nonexistent/error.html: No such file",
        ),
    ],
)
def test_config_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, source="router.yml")
    assert str(raised.value).startswith(f"router.yml: {message}")


def test_an_unrenderable_template_stops_routerd(tmp_path: Path) -> None:
    template = tmp_path / "error.html"
    template.write_text("<p>{{ range .Header }}x{{ end }}</p>\n")
    config = tmp_path / "router.yml"
    config.write_text(f"html_error_template_file: {template}\n")
    result = run_routerd("--check-config", "--config", str(config))
    assert result.returncode != 0
    assert f"html_error_template_file: {template}: line 1: {{{{range .Header}}}}" in result.stderr
