"""0.1.10 import path."""

from ..storage.schema import TokenUsageLog

__all__ = ["TokenUsageLog"]
