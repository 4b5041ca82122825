"""Pipe valves (Open WebUI's admin settings of a Function) and their resolution.

Open WebUI builds a fresh ``Valves`` from the stored JSON before every call, so a
default computed once at import would be lost. Empty valves are therefore resolved at
use time: the valve if set, else the environment variable, else the protocol default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field, model_validator

from ..errors import ConfigurationError
from ..providers.protocol import Connection, WireProtocol
from ..storage.engine import default_database_url

SECRET: dict[str, Any] = {"input": {"type": "password"}}
"""How Open WebUI's valve form learns to mask a field (``<input type=password>``)."""

DEFAULT_OUTPUT_ESTIMATE = 1024
"""Output tokens reserved at admission when the request sets no ``max_tokens``."""


class PipeValves(BaseModel):
    """Settings shared by every tracked pipe; empty means "use the default"."""

    LEGACY_NAMES: ClassVar[Mapping[str, str]] = {}
    """0.1.10 valve names still accepted (``ANTHROPIC_API_KEY`` -> ``API_KEY``)."""

    API_KEY: str = Field(default="", description="Provider API key (empty: from the "
                         "environment variable named in the docs)", json_schema_extra=SECRET)
    API_BASE_URL: str = Field(default="", description="Base URL of the API (empty: the "
                              "provider's public endpoint)")
    PROVIDER: str = Field(default="", description="Provider name the usage is billed to "
                          "and whose priced models are listed (empty: the protocol's name)")
    DATABASE_URL: str = Field(default="", description="Token-tracking database (empty: "
                              "Open WebUI's DATABASE_URL)", json_schema_extra=SECRET)
    AUTH_HEADER: str = Field(default="", description="Header carrying the key, e.g. "
                             "api-key for Azure OpenAI (empty: the protocol's own)")
    QUERY_PARAMS: str = Field(default="", description="Added to every request URL, e.g. "
                              "api-version=2024-10-21 for Azure OpenAI")
    SHOW_STATUS: bool = Field(default=False, description="Show tokens, credits charged "
                              "and credits left under each answer")
    DEFAULT_MAX_OUTPUT_TOKENS: int = Field(default=DEFAULT_OUTPUT_ESTIMATE, ge=1,
                                           description="Output tokens reserved when a "
                                           "request sets no max_tokens")
    TIMEOUT_SECONDS: float = Field(default=600.0, gt=0, description="HTTP timeout")

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and cls.LEGACY_NAMES:
            data = dict(data)
            for old, new in cls.LEGACY_NAMES.items():
                if data.get(old) and not data.get(new):
                    data[new] = data[old]
                data.pop(old, None)
        return data


@dataclass(frozen=True)
class PipeSettings:
    """Valves resolved against the environment and the protocol's defaults."""

    connection: Connection
    provider: str
    database_url: str
    show_status: bool
    default_max_output: int


def _first_env(names: tuple[str, ...], environ: Mapping[str, str]) -> str:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return ""


def _query(text: str) -> dict[str, str]:
    text = text.strip().lstrip("?")
    if not text:
        return {}
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    if not pairs:
        raise ConfigurationError(f"QUERY_PARAMS must look like name=value&name2=value2, "
                                 f"got {text!r}")
    return dict(pairs)


def resolve(valves: PipeValves, protocol: WireProtocol, *, provider: str,
            key_env: tuple[str, ...], url_env: tuple[str, ...],
            environ: Mapping[str, str] | None = None) -> PipeSettings:
    env = os.environ if environ is None else environ
    base_url = (valves.API_BASE_URL.strip() or _first_env(url_env, env)
                or protocol.default_base_url)
    if not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"API_BASE_URL must start with http:// or https://, "
                                 f"got {base_url!r}")
    connection = Connection(
        base_url=base_url,
        api_key=valves.API_KEY.strip() or _first_env(key_env, env),
        auth_header=valves.AUTH_HEADER.strip(),
        query=_query(valves.QUERY_PARAMS),
        timeout_s=valves.TIMEOUT_SECONDS,
    )
    return PipeSettings(
        connection=connection,
        provider=valves.PROVIDER.strip() or provider,
        database_url=valves.DATABASE_URL.strip() or default_database_url(env),
        show_status=valves.SHOW_STATUS,
        default_max_output=valves.DEFAULT_MAX_OUTPUT_TOKENS,
    )
