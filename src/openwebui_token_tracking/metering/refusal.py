"""What a user reads when a limit refuses a request, whatever the entry point.

The refusal is raised, carrying everything the user needs: how much is left, when it
resets (in the user's own time zone), whom to ask, and a free model to use meanwhile.
Open WebUI 0.12 shows the text of an exception raised by ``pipe()`` in the chat; the
gateway sends the same text as an OpenAI-style error (HTTP 429).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ..accounting.money import quantize_display
from ..errors import (
    GroupBudgetExceededError,
    RateLimitExceededError,
    SpendCapExceededError,
    TokenLimitExceededError,
)
from ..storage.counters import API_KEY, REFUSAL_REASONS
from ..storage.prices import free_models
from ..storage.settings_store import get_value

API_KEY_LIMIT = REFUSAL_REASONS[API_KEY]


@dataclass(frozen=True)
class RefusalFacts:
    contact_text: str
    free_model: str | None
    """Display name of a free model, preferring one of the refusing provider."""


def refusal_facts(session: Session, provider: str) -> RefusalFacts:
    free = free_models(session)
    mine = [m for m in free if m.provider == provider]
    candidates = mine or free
    name = (candidates[0].name or candidates[0].id) if candidates else None
    return RefusalFacts(get_value(session, "limit_contact_text"), name)


def _credits(value: Decimal | None) -> str:
    if value is None:
        return "?"
    return f"{quantize_display(max(value, Decimal(0)))}"


def format_reset(reset_at: datetime, tz: ZoneInfo, *, seconds: bool = False) -> str:
    local = reset_at.astimezone(tz)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{local:%Y-%m-%d} {clock} {local.tzname()} ({tz.key})"


def _what(exc: TokenLimitExceededError, allowance_name: str | None) -> str:
    if exc.reason == API_KEY_LIMIT:
        return "this API key's budget is used up"
    if allowance_name:
        return f"the sponsored allowance {allowance_name!r} is used up"
    if isinstance(exc, SpendCapExceededError):
        kind = "model" if exc.reason == "model_cap" else "provider"
        return f"your spend cap on this {kind} is used up"
    if isinstance(exc, GroupBudgetExceededError):
        return "your credit group's team budget is used up"
    return "your credit allowance is used up"


def refusal_message(exc: TokenLimitExceededError, tz: ZoneInfo, facts: RefusalFacts,
                    allowance_name: str | None = None) -> str:
    if isinstance(exc, RateLimitExceededError):
        lines = [f"This request was refused: you are sending too much too fast ({exc})."]
        if exc.reset_at is not None:
            lines.append(f"You can retry at {format_reset(exc.reset_at, tz, seconds=True)}.")
        if facts.contact_text:
            lines.append(facts.contact_text)
        return "\n".join(lines)
    lines = [f"This request was refused: {_what(exc, allowance_name)} ({exc})."]
    if exc.limit is not None:
        lines.append(f"Credits left: {_credits(exc.remaining)} of {_credits(exc.limit)}.")
    if exc.reset_at is not None:
        lines.append(f"Your credits reset at {format_reset(exc.reset_at, tz)}.")
    if facts.contact_text:
        lines.append(facts.contact_text)
    if facts.free_model:
        lines.append(f"You can still use the free model {facts.free_model}.")
    return "\n".join(lines)


def refusal(exc: TokenLimitExceededError, tz: ZoneInfo, facts: RefusalFacts,
            allowance_name: str | None = None) -> TokenLimitExceededError:
    """A copy of ``exc`` (same class, numbers and reason) whose text is the user's message."""
    message = refusal_message(exc, tz, facts, allowance_name)
    shown = copy.copy(exc)
    shown.args = (message,)
    return shown
