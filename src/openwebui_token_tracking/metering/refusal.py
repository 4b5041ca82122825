"""What a user reads when a limit refuses a request, whatever the entry point.

The refusal is raised, carrying everything the user needs: how much is left, when it
resets (in the user's own time zone), whom to ask, and a free model to use meanwhile.
Open WebUI 0.12 shows the text of an exception raised by ``pipe()`` in the chat; the
gateway sends the same text as an OpenAI-style error (HTTP 429).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ..accounting.money import quantize_display
from ..errors import TokenLimitExceededError
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


def format_reset(reset_at: datetime, tz: ZoneInfo) -> str:
    local = reset_at.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({tz.key})"


def refusal_message(exc: TokenLimitExceededError, tz: ZoneInfo, facts: RefusalFacts,
                    allowance_name: str | None = None) -> str:
    if exc.reason == API_KEY_LIMIT:
        what = "this API key's budget"
    elif allowance_name:
        what = f"the sponsored allowance {allowance_name!r}"
    else:
        what = "your credit allowance"
    lines = [f"This request was refused: {what} is used up ({exc})."]
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
    """A copy of ``exc`` (same class and numbers) whose text is the user's message."""
    return type(exc)(refusal_message(exc, tz, facts, allowance_name),
                     remaining=exc.remaining, limit=exc.limit, reset_at=exc.reset_at,
                     reason=exc.reason)
