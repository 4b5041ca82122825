"""0.1.10 import path of the pipes' base class and its limit errors."""

from ..errors import (
    DailyTokenLimitExceededError,
    ProviderError,
    TokenLimitExceededError,
    TotalTokenLimitExceededError,
)
from ..openwebui.pipe import TrackedPipe as BaseTrackedPipe

RequestError = ProviderError
"""0.1.10's name for a failed provider request."""

__all__ = [
    "BaseTrackedPipe",
    "DailyTokenLimitExceededError",
    "RequestError",
    "TokenLimitExceededError",
    "TotalTokenLimitExceededError",
]
