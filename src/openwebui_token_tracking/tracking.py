"""0.1.10's ``TokenTracker``, a thin wrapper over the ledger (``Accountant``).

What changed underneath, keeping the signatures: credits are exact ``Decimal`` (never
truncated floats); the window is the configured day/week/month in the configured time
zone, not the server's local day; checks read one counter row instead of scanning the
whole log; every charge is stored once with the price then in force; a sponsored
allowance's total limit counts all of its usage since creation; an unpriced model is
refused instead of being free.

For new code, prefer ``Accountant.admit``/``settle``, which reserve credit atomically;
``remaining_credits`` followed by ``log_token_usage`` cannot stop concurrent requests
from passing the same check.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from .accountant import READ_RETRY, Accountant
from .accounting.money import MICRO, micro_to_credits
from .accounting.pricing import is_free
from .accounting.usage import Usage
from .errors import (
    DailyTokenLimitExceededError,
    InvalidInputError,
    TokenLimitExceededError,
    TotalTokenLimitExceededError,
    UnknownModelError,
)
from .models import ModelPricingSchema
from .providers.protocol import MAX_TOKENS
from .storage import aliases, prices, sponsors
from .storage.settings_store import budget_settings_from
from .storage.user_state import admission_terms

__all__ = [
    "DailyTokenLimitExceededError",
    "TokenLimitExceededError",
    "TokenTracker",
    "TotalTokenLimitExceededError",
]


def _user_id(user: dict[str, Any]) -> str:
    user_id = user.get("id") if isinstance(user, dict) else None
    if not user_id:
        raise InvalidInputError("user must be a dict with an 'id' (Open WebUI's __user__)")
    return str(user_id)


class TokenTracker:
    """Tracks usage and limits of Open WebUI users in the database at ``db_url``."""

    def __init__(self, db_url: str | None = None) -> None:
        self.accountant = Accountant(db_url)
        self.db_engine = self.accountant.engine
        self.db_url = db_url

    def get_models(self, provider: str | None = None,
                   id: str | None = None) -> list[ModelPricingSchema]:
        """Priced models, optionally of one provider and/or with one id.

        An ``id`` without a price row (a dated snapshot such as ``gpt-4o-2024-08-06``)
        is resolved through genai-prices' matching and recorded, as a request would.
        """
        found = self.accountant.run(
            lambda s: [ModelPricingSchema.model_validate(r)
                       for r in prices.list_prices(s, provider, id)],
            read_only=True, retry=READ_RETRY, what="listing models")
        if found or id is None:
            return found
        now = self.accountant.clock()

        def resolve(s: Session) -> list[ModelPricingSchema]:
            rows = (aliases.resolve_anywhere(s, id, now) if provider is None
                    else [aliases.resolve_row(s, provider, id, now)])
            return [ModelPricingSchema.model_validate(r) for r in rows if r is not None]
        return self.accountant.run(resolve, what="pricing a dated model id")

    def is_paid(self, model_id: str) -> bool:
        """True if using the model costs credits; ``UnknownModelError`` if it has no price
        (neither a price row nor a genai-prices match)."""
        models = self.get_models(id=model_id)
        if not models:
            message = self.accountant.run(lambda s: aliases.refusal_anywhere(s, model_id),
                                          read_only=True, retry=READ_RETRY,
                                          what="explaining an unpriced model")
            raise UnknownModelError(message)
        return not all(is_free(m.price_input().to_price()) for m in models)

    def max_credits(self, user: dict[str, Any], sponsored_allowance_name: str | None = None,
                    sponsored_allowance_id: uuid.UUID | str | None = None) -> Decimal | None:
        """The user's allowance per window, or a sponsored allowance's per-user limit."""
        if sponsored_allowance_name is not None and sponsored_allowance_id is not None:
            raise InvalidInputError("pass sponsored_allowance_name or sponsored_allowance_id, "
                                    "not both")
        user_id = _user_id(user)

        def work(s: Session) -> Decimal | None:
            if sponsored_allowance_name is None and sponsored_allowance_id is None:
                terms = admission_terms(s, user_id, "", "")  # settings and groups: one trip
                base = budget_settings_from(s, terms.settings).base_allowance_micro
                return micro_to_credits(base + terms.group_allowance * MICRO)
            allowance = sponsors.allowance_limits(s, name=sponsored_allowance_name,
                                                  allowance_id=sponsored_allowance_id)
            if allowance.daily_credit_limit is None:
                return None
            return micro_to_credits(allowance.daily_credit_limit * MICRO)
        return self.accountant.run(work, read_only=True, retry=READ_RETRY,
                                   what="reading a credit limit")

    def remaining_credits(self, user: dict[str, Any], sponsored_allowance_name: str | None = None,
                          ) -> tuple[Decimal | None, Decimal | None]:
        """(credits left in the user's window, credits left in the sponsored total).

        With a sponsored allowance the first value is what is left of its per-user limit
        (None if it has none); without one the second value is None.
        """
        report = self.accountant.balance(_user_id(user), allowance_name=sponsored_allowance_name)
        by_scope = {state.scope: state.remaining for state in report.limits}
        if sponsored_allowance_name is None:
            return by_scope["user"], None
        return by_scope.get("sponsor_user"), by_scope["sponsor_total"]

    def log_token_usage(
        self,
        provider: str,
        model_id: str,
        user: dict[str, Any],
        prompt_tokens: int,
        response_tokens: int,
        sponsored_allowance_name: str | None = None,
        *,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        chat_id: str | None = None,
        message_id: str | None = None,
        status: str = "completed",
        now: datetime | None = None,
    ) -> int | None:
        """Charge a finished request; returns the ledger row id (None if already charged).

        ``prompt_tokens`` counts every prompt token, cached or not, and ``response_tokens``
        every generated token, reasoning included, as providers report them; the cached,
        cache-write and reasoning parts are billed at their own rates.
        """
        for name, value in (("prompt_tokens", prompt_tokens), ("response_tokens", response_tokens),
                            ("cached_input_tokens", cached_input_tokens),
                            ("cache_write_tokens", cache_write_tokens),
                            ("reasoning_tokens", reasoning_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not 0 <= value <= MAX_TOKENS:
                raise InvalidInputError(f"{name} must be a whole number from 0 to "
                                        f"{MAX_TOKENS:,}, got {value!r}")
        fresh = prompt_tokens - cached_input_tokens - cache_write_tokens
        visible = response_tokens - reasoning_tokens
        if fresh < 0 or visible < 0:
            raise InvalidInputError("cached/cache-write tokens exceed prompt_tokens, or "
                                    "reasoning tokens exceed response_tokens")
        usage = Usage(input_tokens=fresh, cached_input_tokens=cached_input_tokens,
                      cache_write_tokens=cache_write_tokens, output_tokens=visible,
                      reasoning_tokens=reasoning_tokens)
        return self.accountant.record(
            user_id=_user_id(user), provider=provider, model_id=model_id, usage=usage,
            allowance_name=sponsored_allowance_name, status=status, chat_id=chat_id,
            message_id=message_id, now=now)
