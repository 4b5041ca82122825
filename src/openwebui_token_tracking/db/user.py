"""0.1.10 import path."""

from ..storage.openwebui_tables import User

__all__ = ["User"]
