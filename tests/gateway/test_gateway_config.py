"""Upstreams from a TOML file or the environment; secrets never shown; one-line errors."""

from __future__ import annotations

import logging

import pytest

from openwebui_token_tracking.errors import ConfigurationError
from openwebui_token_tracking.gateway.config import load_upstreams

SECRET = "sk-upstream-secret-value"


def test_environment_gives_one_upstream_per_key_as_the_pipes_read_them():
    env = {"OPENAI_API_KEY": SECRET, "OPENAI_API_BASE_URL": "http://vllm:8000/v1",
           "GEMINI_API_KEY": "g-key", "MISTRAL_API_KEY": ""}
    ups = load_upstreams(environ=env)
    assert [(u.provider, u.protocol.name) for u in ups] == [("openai", "openai"),
                                                           ("google_genai", "gemini")]
    assert ups[0].connection.base_url == "http://vllm:8000/v1"
    assert ups[0].connection.api_key == SECRET
    assert ups[1].connection.base_url.startswith("https://generativelanguage")
    assert SECRET not in repr(ups) and SECRET not in str(ups)


def test_file_configures_any_openai_compatible_server(tmp_path, caplog):
    path = tmp_path / "gw.toml"
    path.write_text(f"""
[upstreams.azure]
protocol = "openai"
base_url = "https://example.openai.azure.com/openai/deployments/x"
api_key_env = "AZURE_KEY"
auth_header = "api-key"
query = {{ api-version = "2024-10-21" }}
timeout_seconds = 30
default_max_output_tokens = 256

[upstreams.anthropic]
protocol = "anthropic"
api_key = "{SECRET}"
""")
    with caplog.at_level(logging.DEBUG):
        ups = load_upstreams(path, environ={"AZURE_KEY": "azure-secret"})
    azure, anthropic = ups
    assert azure.connection.auth_header == "api-key"
    assert azure.connection.query == {"api-version": "2024-10-21"}
    assert azure.connection.timeout_s == 30 and azure.default_max_output == 256
    assert azure.connection.api_key == "azure-secret"
    assert anthropic.connection.base_url == "https://api.anthropic.com/v1"
    assert SECRET not in repr(ups) and SECRET not in caplog.text
    # the environment variable names the file too
    assert len(load_upstreams(environ={"TOKEN_TRACKING_GATEWAY_CONFIG": str(path),
                                       "AZURE_KEY": "k"})) == 2


@pytest.mark.parametrize(("text", "message"), [
    ("[upstreams.openai\n", "is not valid TOML"),
    ("title = 1\n", "has no [upstreams.<provider>] table"),
    ('[upstreams.x]\nprotocol = "grpc"\n', "protocol must be one of"),
    ('[upstreams.x]\nbase_url = "ftp://h"\n', "must start with http:// or https://"),
    ('[upstreams.x]\napi_key_env = "NOPE"\n', "'NOPE', which is not set"),
    ('[upstreams.x]\ntimeout_seconds = -1\n', "timeout_seconds must be a positive number"),
    ('[upstreams.x]\nmodel = "y"\n', "unknown setting 'model'"),
    ('[upstreams.x]\nquery = "a=b"\n', "query must be a table"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "gw.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as info:
        load_upstreams(path, environ={})
    assert message in str(info.value) and "\n" not in str(info.value).strip()


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read gateway config"):
        load_upstreams(tmp_path / "missing.toml", environ={})
