"""The fail-closed message now lives in :mod:`..metering.outage` (shared with the gateway)."""

from ..metering.outage import MESSAGE, unavailable

__all__ = ["MESSAGE", "unavailable"]
