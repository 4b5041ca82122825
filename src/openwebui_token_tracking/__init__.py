"""openwebui-token-tracking: meter, charge and limit LLM usage in Open WebUI.

``TokenTracker`` keeps 0.1.10's API; ``Accountant`` is the ledger's entry point for new
code (atomic admission: ``admit`` then ``settle`` or ``release``).

Names are imported lazily, so ``openwebui_token_tracking.accounting`` (the pure core)
can be imported without SQLAlchemy, and a pipe pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .accountant import Accountant, BalanceReport, LimitState, RateReport
    from .accounting import Price, Usage
    from .alerts import AlertDeliverer
    from .errors import (
        AlertDeliveryError,
        AllowanceExpiredError,
        AlreadyExistsError,
        ConfigurationError,
        DailyTokenLimitExceededError,
        DatabaseError,
        GroupBudgetExceededError,
        InvalidInputError,
        ModelNotCoveredError,
        NotFoundError,
        ProviderError,
        RateLimitExceededError,
        SpendCapExceededError,
        TokenLimitExceededError,
        TokenTrackingError,
        TotalTokenLimitExceededError,
        UnknownModelError,
        UnknownUserError,
    )
    from .tracking import TokenTracker

__version__ = "0.2.0"

__all__ = [
    "Accountant",
    "AlertDeliverer",
    "AlertDeliveryError",
    "AllowanceExpiredError",
    "AlreadyExistsError",
    "BalanceReport",
    "ConfigurationError",
    "DailyTokenLimitExceededError",
    "DatabaseError",
    "GroupBudgetExceededError",
    "InvalidInputError",
    "LimitState",
    "ModelNotCoveredError",
    "NotFoundError",
    "Price",
    "ProviderError",
    "RateLimitExceededError",
    "RateReport",
    "SpendCapExceededError",
    "TokenLimitExceededError",
    "TokenTracker",
    "TokenTrackingError",
    "TotalTokenLimitExceededError",
    "UnknownModelError",
    "UnknownUserError",
    "Usage",
]

_HOME = {
    "Accountant": "accountant", "BalanceReport": "accountant", "LimitState": "accountant",
    "RateReport": "accountant",
    "Price": "accounting", "Usage": "accounting", "TokenTracker": "tracking",
    "AlertDeliverer": "alerts",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_HOME.get(name, 'errors')}", __name__)
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
