"""What every wire-protocol adapter provides, and the values they exchange.

An adapter is pure translation: Open WebUI's OpenAI-style request body in, an
``HTTPCall`` out; the provider's JSON body or SSE events in, text ``Delta``s and one
``Usage`` out. HTTP itself lives in :mod:`.client`, so adapters are tested without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..accounting.usage import Usage
from ..errors import ProviderError
from .sse import SSEEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Connection:
    """Where and how to reach a server: the pipe's valves, resolved.

    ``auth_header`` empty means the protocol's own (``Authorization: Bearer`` for
    OpenAI); a different name (Azure's ``api-key``) sends the bare key in it.
    ``query`` is added to every URL (Azure's ``api-version``).
    """

    base_url: str
    api_key: str = ""
    auth_header: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 600.0


@dataclass(frozen=True)
class HTTPCall:
    """One request to send: a POST of ``json``, or a GET (``json`` unused)."""

    url: str
    headers: dict[str, str]
    json: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


@dataclass(frozen=True)
class ServedModel:
    """A model the provider's models endpoint lists; ``name`` its display name, if any."""

    id: str
    name: str | None = None


@dataclass(frozen=True)
class ModelPage:
    """One page of a models list; ``next_page`` the token of the next, None at the end."""

    models: list[ServedModel]
    next_page: str | None = None


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of streamed text; ``reasoning`` marks thinking text (not the answer)."""

    text: str
    reasoning: bool = False


@dataclass(frozen=True)
class Completion:
    """A whole non-streamed answer; ``usage`` is None when the server reported none."""

    text: str
    usage: Usage | None
    reasoning: str = ""

    @classmethod
    def of(cls, deltas: Sequence[Delta], usage: Usage | None) -> Completion:
        """The answer's text and reasoning joined from its deltas."""
        return cls(text="".join(d.text for d in deltas if not d.reasoning), usage=usage,
                   reasoning="".join(d.text for d in deltas if d.reasoning))


class StreamParser(Protocol):
    """Turns one stream's SSE events into deltas, remembering the usage it saw."""

    usage: Usage | None
    finished: bool

    def feed(self, event: SSEEvent) -> list[Delta]:
        """Deltas of one event; raises ``ProviderError`` for an in-stream error."""
        ...


class WireProtocol(Protocol):
    name: str
    """The protocol's name, also the default provider billed (``openai``, ...)."""
    default_base_url: str
    max_image_bytes: int

    def build_call(self, conn: Connection, model_id: str, body: Mapping[str, Any],
                   stream: bool) -> HTTPCall: ...

    def parse_completion(self, data: Mapping[str, Any]) -> Completion: ...

    def stream_parser(self) -> StreamParser: ...

    def models_call(self, conn: Connection, page: str | None) -> HTTPCall:
        """The GET listing the models the server serves (``page``: a next-page token)."""
        ...

    def parse_models(self, data: Mapping[str, Any]) -> ModelPage:
        """The chat models of one page of the models list."""
        ...


def join_url(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


MAX_TOKENS = 100_000_000
"""The largest token count one request can report (context windows reach 10M tokens):
anything above is a broken server, and charging it could exceed what the ledger can
store."""


class InvalidUsageError(ProviderError):
    """A usage report with an impossible token count: negative, fractional, not a number,
    or above ``MAX_TOKENS``. Such a report is not trusted at all (see ``read_reported``)."""


def token_count(value: object) -> int:
    """A token count from JSON: missing or null counts as 0; an impossible value raises
    ``InvalidUsageError``. Integral floats (``12.0``) are accepted."""
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise InvalidUsageError(f"token count {str(value)[:40]!r} is not a whole number "
                                f"from 0 to {MAX_TOKENS:,}")
    return value


class _Reporting(Protocol):
    usage: Usage | None


def read_reported(parser: _Reporting, read: Callable[[], Usage | None], provider: str) -> None:
    """Update ``parser.usage`` from one usage report.

    A report with an impossible number makes the stream's usage unknown for good (later
    reports of the same stream are ignored too), so the request is charged the local
    estimate, flagged ``estimated``, rather than a number nobody can justify.
    """
    if getattr(parser, "usage_rejected", False):
        return
    try:
        usage = read()
    except InvalidUsageError as exc:
        logger.warning("%s sent an impossible usage report (%s); charging the local "
                       "estimate instead", provider, exc)
        parser.usage = None
        parser.usage_rejected = True  # type: ignore[attr-defined]
        return
    if usage is not None:
        parser.usage = usage


def completion_usage(read: Callable[[], Usage | None], provider: str) -> Usage | None:
    """A non-streamed answer's usage; None (estimate) when the report is impossible."""
    holder = _Holder()
    read_reported(holder, read, provider)
    return holder.usage


class _Holder:
    def __init__(self) -> None:
        self.usage: Usage | None = None


def loads_event(data: str, provider: str) -> Any:
    """An SSE event's JSON data, or ``ProviderError`` when it is not JSON."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ProviderError(f"{provider} sent a stream event that is not JSON: "
                            f"{data[:200]!r}") from exc


def listed_models(data: Mapping[str, Any], key: str, provider: str) -> list[Mapping[str, Any]]:
    """The entries of a models list under ``key``; ``ProviderError`` when the list itself
    is missing (an unexpected body, e.g. a server without a models endpoint)."""
    entries = data.get(key)
    if not isinstance(entries, list):
        raise ProviderError(f"{provider} listed its models without a {key!r} list: "
                            f"{json.dumps(data)[:200]}")
    return [e for e in entries if isinstance(e, Mapping)]

