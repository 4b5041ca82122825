"""The one exception tree of openwebui-token-tracking.

::

    TokenTrackingError
     ├── NotFoundError                  (also a KeyError, as 0.1.10 raised)
     │    ├── UnknownModelError         model has no price: refused, never free
     │    └── UnknownUserError
     ├── AlreadyExistsError             (also a KeyError)
     ├── InvalidInputError              (also a ValueError)
     │    └── ModelNotCoveredError      allowance does not cover the model
     ├── ConfigurationError             bad DATABASE_URL, bad setting value
     ├── DatabaseError                  a driver error, translated at the boundary
     ├── TokenLimitExceededError        a request refused by a limit
     │    ├── DailyTokenLimitExceededError   user's window (day/week/month) spent
     │    │    ├── SpendCapExceededError     window's cap on a model or provider spent
     │    │    └── GroupBudgetExceededError  a credit group's team budget spent
     │    ├── TotalTokenLimitExceededError   sponsored allowance's total spent
     │    ├── AllowanceExpiredError          sponsored allowance past its expiry
     │    └── RateLimitExceededError         too many requests or tokens this minute
     ├── ProviderError                  an LLM provider failed or refused
     └── AlertDeliveryError             a budget alert's webhook or e-mail failed

``TokenLimitExceededError`` and its two 0.1.10 subclasses are re-exported from
``openwebui_token_tracking.tracking`` under their old names. Limit errors carry the
numbers a user needs to understand the refusal (remaining credits, reset instant).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal


class TokenTrackingError(Exception):
    """Base of every error this package raises on purpose."""


class NotFoundError(TokenTrackingError, KeyError):
    """A named thing (group, allowance, user, model price) does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownModelError(NotFoundError):
    """The model has no price, so its usage cannot be charged: fail closed."""


class UnknownUserError(NotFoundError):
    """The user id is not in Open WebUI's ``user`` table."""


class AlreadyExistsError(TokenTrackingError, KeyError):
    """Creating something whose name is already taken."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInputError(TokenTrackingError, ValueError):
    """An argument is malformed or out of range (negative limit, empty name, ...)."""


class ModelNotCoveredError(InvalidInputError):
    """A sponsored allowance was used for a model it does not cover."""


class ConfigurationError(TokenTrackingError):
    """The environment or a stored setting is unusable."""


class DatabaseError(TokenTrackingError):
    """The database failed; the original driver error is the ``__cause__``."""


class TokenLimitExceededError(TokenTrackingError):
    """A request was refused because a credit limit is spent."""

    def __init__(
        self,
        message: str,
        *,
        remaining: Decimal | None = None,
        limit: Decimal | None = None,
        reset_at: datetime | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.remaining = remaining
        self.limit = limit
        self.reset_at = reset_at
        self.reason = reason
        """Which limit refused: ``user_limit``, ``sponsored_user_limit``,
        ``sponsored_total_limit``, ``allowance_expired``, ``model_cap``, ``provider_cap``,
        ``group_budget``, ``rate_limit_requests`` or ``rate_limit_tokens``."""


class DailyTokenLimitExceededError(TokenLimitExceededError):
    """The user's allowance for the current window is spent."""


class SpendCapExceededError(DailyTokenLimitExceededError):
    """The window's spend cap on the requested model or provider is spent."""


class GroupBudgetExceededError(DailyTokenLimitExceededError):
    """A credit group's total budget for the window (all members together) is spent."""


class TotalTokenLimitExceededError(TokenLimitExceededError):
    """A sponsored allowance's total limit over all users is spent."""


class AllowanceExpiredError(TokenLimitExceededError):
    """A sponsored allowance is past its expiry instant."""


class RateLimitExceededError(TokenLimitExceededError):
    """Too many requests or tokens in the current minute; retry at ``reset_at``
    (None when the request alone needs more tokens than the limit allows)."""

    def __init__(self, message: str, *, limit_kind: str = "", rate_limit: int | None = None,
                 rate_used: int | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.limit_kind = limit_kind
        """``requests_per_minute`` or ``tokens_per_minute``."""
        self.rate_limit = rate_limit
        self.rate_used = rate_used
        """Requests or tokens already counted this minute."""


class ProviderError(TokenTrackingError):
    """An LLM provider returned an error or could not be reached."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class AlertDeliveryError(TokenTrackingError):
    """A budget alert could not be delivered (webhook refused or unreachable, SMTP failed).

    Raised by the delivery channels; the deliverer records it on the outbox row and
    retries later, so it never reaches a charge.
    """
