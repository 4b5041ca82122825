"""The gateway's upstreams, configured once: a TOML file and/or environment variables.

A file (``--gateway-config`` or ``TOKEN_TRACKING_GATEWAY_CONFIG``) names one table per
provider billed::

    [upstreams.openai]                       # the provider billed (its prices apply)
    protocol = "openai"                      # openai | anthropic | gemini | mistral
    base_url = "https://api.openai.com/v1"   # optional: the protocol's public endpoint
    api_key_env = "OPENAI_API_KEY"           # or api_key = "..." (file mode 600!)
    auth_header = "api-key"                  # optional (Azure); query = {api-version=...}
    timeout_seconds = 600
    default_max_output_tokens = 1024         # reserved when a request sets no max_tokens

Without a file, every provider whose key is in the environment is an upstream, with
the same variables the pipes read (``OPENAI_API_KEY`` / ``OPENAI_API_BASE_URL``,
``ANTHROPIC_…``, ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY`` / ``GEMINI_API_BASE_URL``
billed as ``google_genai``, ``MISTRAL_…``). Secrets are never logged or shown: an
``Upstream``'s repr leaves the key out.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..providers import ANTHROPIC, GEMINI, MISTRAL, OPENAI
from ..providers.protocol import Connection, WireProtocol

PROTOCOLS: dict[str, WireProtocol] = {p.name: p for p in (OPENAI, ANTHROPIC, GEMINI, MISTRAL)}
DEFAULT_OUTPUT_ESTIMATE = 1024
CONFIG_ENV = "TOKEN_TRACKING_GATEWAY_CONFIG"

ENV_UPSTREAMS: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    # provider billed, protocol, key variables, base URL variables (as the pipes)
    ("openai", "openai", ("OPENAI_API_KEY",), ("OPENAI_API_BASE_URL", "OPENAI_BASE_URL")),
    ("anthropic", "anthropic", ("ANTHROPIC_API_KEY",), ("ANTHROPIC_API_BASE_URL",)),
    ("google_genai", "gemini", ("GOOGLE_API_KEY", "GEMINI_API_KEY"), ("GEMINI_API_BASE_URL",)),
    ("mistral", "mistral", ("MISTRAL_API_KEY",), ("MISTRAL_API_BASE_URL",)),
]
KEYS = {"protocol", "base_url", "api_key", "api_key_env", "auth_header", "query",
        "timeout_seconds", "default_max_output_tokens"}


@dataclass(frozen=True)
class Upstream:
    """Where requests for one provider's models go."""

    provider: str
    protocol: WireProtocol = field(repr=False)
    connection: Connection = field(repr=False)
    default_max_output: int = DEFAULT_OUTPUT_ESTIMATE

    def __repr__(self) -> str:  # never the key
        return (f"Upstream(provider={self.provider!r}, protocol={self.protocol.name!r}, "
                f"base_url={self.connection.base_url!r})")


def _first(names: tuple[str, ...], env: Mapping[str, str]) -> str:
    return next((env[n].strip() for n in names if env.get(n, "").strip()), "")


def _url(value: str, where: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"{where}: base_url must start with http:// or https://, "
                                 f"got {value!r}")
    return value


def from_environment(env: Mapping[str, str]) -> list[Upstream]:
    out = []
    for provider, proto, key_vars, url_vars in ENV_UPSTREAMS:
        key = _first(key_vars, env)
        if not key:
            continue
        protocol = PROTOCOLS[proto]
        base = _url(_first(url_vars, env) or protocol.default_base_url, url_vars[0])
        out.append(Upstream(provider, protocol, Connection(base_url=base, api_key=key)))
    return out


def _number(table: Mapping[str, Any], name: str, default: float, where: str) -> float:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"{where}: {name} must be a positive number, got {value!r}")
    return float(value)


def _upstream(provider: str, table: Any, env: Mapping[str, str], where: str) -> Upstream:
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where}: must be a table of settings")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown setting {unknown[0]!r}; known: "
                                 f"{', '.join(sorted(KEYS))}")
    name = table.get("protocol", "openai")
    protocol = PROTOCOLS.get(name) if isinstance(name, str) else None
    if protocol is None:
        raise ConfigurationError(f"{where}: protocol must be one of "
                                 f"{', '.join(PROTOCOLS)}, got {name!r}")
    key = table.get("api_key")
    if key is None and table.get("api_key_env"):
        key = env.get(str(table["api_key_env"]), "").strip()
        if not key:
            raise ConfigurationError(f"{where}: api_key_env names {table['api_key_env']!r}, "
                                     "which is not set")
    query = table.get("query", {})
    if not isinstance(query, Mapping):
        raise ConfigurationError(f"{where}: query must be a table of name = \"value\"")
    connection = Connection(
        base_url=_url(str(table.get("base_url") or protocol.default_base_url), where),
        api_key=str(key or ""), auth_header=str(table.get("auth_header") or ""),
        query={str(k): str(v) for k, v in query.items()},
        timeout_s=_number(table, "timeout_seconds", 600.0, where))
    max_out = int(_number(table, "default_max_output_tokens", DEFAULT_OUTPUT_ESTIMATE, where))
    return Upstream(provider, protocol, connection, max_out)


def from_file(path: Path, env: Mapping[str, str]) -> list[Upstream]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read gateway config {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"gateway config {path} is not valid TOML: {exc}") from exc
    tables = data.get("upstreams")
    if not isinstance(tables, Mapping) or not tables:
        raise ConfigurationError(f"gateway config {path} has no [upstreams.<provider>] table")
    return [_upstream(str(p), t, env, f"{path} [upstreams.{p}]") for p, t in tables.items()]


def load_upstreams(path: str | Path | None = None,
                   environ: Mapping[str, str] | None = None) -> list[Upstream]:
    """The configured upstreams: the file's if one is given (or named in the
    environment), else one per provider whose API key is in the environment."""
    env = os.environ if environ is None else environ
    name = path or env.get(CONFIG_ENV, "").strip()
    return from_file(Path(name), env) if name else from_environment(env)
