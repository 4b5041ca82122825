"""0.1.10 import path."""

from ..storage.schema import SponsoredAllowance, SponsoredAllowanceBaseModels

__all__ = ["SponsoredAllowance", "SponsoredAllowanceBaseModels"]
