"""0.1.10 import path."""

from ..storage.schema import ModelPricing

__all__ = ["ModelPricing"]
