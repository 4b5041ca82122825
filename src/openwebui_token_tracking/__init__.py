"""openwebui-token-tracking: meter, charge and limit LLM usage in Open WebUI.

``TokenTracker`` keeps 0.1.10's API; ``Accountant`` is the ledger's entry point for new
code (atomic admission: ``admit`` then ``settle`` or ``release``).
"""

from .accountant import Accountant, BalanceReport, LimitState
from .accounting import Price, Usage
from .errors import (
    AllowanceExpiredError,
    AlreadyExistsError,
    ConfigurationError,
    DailyTokenLimitExceededError,
    DatabaseError,
    InvalidInputError,
    ModelNotCoveredError,
    NotFoundError,
    ProviderError,
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
    "AllowanceExpiredError",
    "AlreadyExistsError",
    "BalanceReport",
    "ConfigurationError",
    "DailyTokenLimitExceededError",
    "DatabaseError",
    "InvalidInputError",
    "LimitState",
    "ModelNotCoveredError",
    "NotFoundError",
    "Price",
    "ProviderError",
    "TokenLimitExceededError",
    "TokenTracker",
    "TokenTrackingError",
    "TotalTokenLimitExceededError",
    "UnknownModelError",
    "UnknownUserError",
    "Usage",
]
