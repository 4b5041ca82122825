"""One request as Open WebUI hands it to a pipe, in our terms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InvalidInputError
from .sponsorship import AllowanceBinding, binding_from_metadata

UTC_ZONE = ZoneInfo("UTC")


def strip_function_prefix(model: str) -> str:
    """``<function_id>.<model_id>`` -> ``<model_id>``.

    Open WebUI always names a manifold's models ``<function id>.<model id>``; function
    ids contain no dots, model ids may (``gpt-4.1``), so only the first dot splits.
    """
    prefix, dot, rest = model.partition(".")
    return rest if dot and prefix and rest else model


def user_timezone(user: Mapping[str, Any] | None) -> ZoneInfo:
    """The user's IANA time zone from ``__user__["timezone"]``; UTC when unset or bad."""
    name = (user or {}).get("timezone")
    if isinstance(name, str) and name.strip():
        try:
            return ZoneInfo(name.strip())
        except (ZoneInfoNotFoundError, ValueError):
            return UTC_ZONE
    return UTC_ZONE


def task_of(task: Any, metadata: Mapping[str, Any] | None) -> str | None:
    """Open WebUI's background task name (title, tags, follow-ups, ...), else None."""
    value = task or (metadata or {}).get("task")
    return str(value) if value else None


@dataclass(frozen=True)
class RequestContext:
    model_id: str
    """The provider's model id (function prefix stripped)."""
    requested_model: str
    """``body["model"]`` as received (after Open WebUI swapped in a workspace model's base)."""
    user_id: str
    timezone: ZoneInfo
    stream: bool
    task: str | None
    chat_id: str | None
    message_id: str | None
    binding: AllowanceBinding | None

    @classmethod
    def from_openwebui(cls, body: Mapping[str, Any], user: Mapping[str, Any] | None,
                       metadata: Mapping[str, Any] | None = None, task: Any = None,
                       chat_id: str | None = None, message_id: str | None = None
                       ) -> RequestContext:
        metadata = metadata or {}
        requested = body.get("model")
        if not isinstance(requested, str) or not requested.strip():
            raise InvalidInputError("the request names no model")
        user_id = (user or {}).get("id")
        if not user_id:
            raise InvalidInputError("the request has no user; tracked pipes charge a user, "
                                    "so they must be called by Open WebUI for a signed-in user")
        task_name = task_of(task, metadata)
        chat_id = chat_id or metadata.get("chat_id")
        message_id = message_id or metadata.get("message_id")
        if task_name and message_id:
            # A task reuses the message's ids; keep its ledger row apart from the answer's.
            message_id = f"{message_id}:{task_name}"
        return cls(
            model_id=strip_function_prefix(requested.strip()),
            requested_model=requested,
            user_id=str(user_id),
            timezone=user_timezone(user),
            stream=bool(body.get("stream")),
            task=task_name,
            chat_id=str(chat_id) if chat_id else None,
            message_id=str(message_id) if message_id else None,
            binding=binding_from_metadata(metadata),
        )
