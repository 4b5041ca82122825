"""Metering shared by every entry point: admission, relay, settlement, refusal messages.

Knows nothing of Open WebUI's pipe arguments or of HTTP servers: the pipes
(``openwebui/``) and the gateway (``gateway/``) describe a request as a
``MeteredRequest`` and forward it through :mod:`.relay`.
"""

from .bill import FILTER, GATEWAY, PIPE, Bill, MeteredRequest, Settlement
from .relay import finish, metered_deltas, send

__all__ = ["FILTER", "GATEWAY", "PIPE", "Bill", "MeteredRequest", "Settlement", "finish",
           "metered_deltas", "send"]
