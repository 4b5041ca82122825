"""0.1.10 import path."""

from ..storage.schema import BaseSetting

__all__ = ["BaseSetting"]
