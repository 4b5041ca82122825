"""What a tracked pipe lists in Open WebUI: the ids the provider serves that get a price.

The provider's models endpoint is asked through the pipe's wire protocol (a short
timeout, every page) and its answer kept for :data:`SERVED_TTL`; an id is listed when
it has a price row or resolves to one through genai-prices' matching
(``storage.aliases``), so dated snapshots appear as the provider names them. When the
list cannot be read (no such endpoint, a refused key, a timeout), the pipe lists the
priced models instead, and asks again after :data:`FAILED_TTL`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import httpx

from ..errors import ProviderError
from ..providers.client import list_models
from ..providers.protocol import Connection, ServedModel, WireProtocol
from ..storage.aliases import MATCH, Resolution

logger = logging.getLogger(__name__)

SERVED_TTL = timedelta(minutes=5)
FAILED_TTL = timedelta(minutes=1)
LIST_TIMEOUT_S = 5.0


def _key(conn: Connection) -> tuple[str, ...]:
    """The connection, the key hashed (never kept in the clear twice)."""
    key_hash = hashlib.sha256(conn.api_key.encode()).hexdigest()
    return (conn.base_url, key_hash, conn.auth_header,
            *(f"{k}={v}" for k, v in sorted(conn.query.items())))


class ServedModels:
    """The provider's models list per connection, cached (request time)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, ...], tuple[datetime, datetime,
                                                  list[ServedModel] | None]] = {}

    async def get(self, client: httpx.AsyncClient, protocol: WireProtocol, conn: Connection,
                  provider: str, now: datetime) -> list[ServedModel] | None:
        """The served models, or None when they cannot be read (use the priced list)."""
        key = _key(conn)
        hit = self._cache.get(key)
        if hit is not None and hit[0] <= now < hit[1]:
            return hit[2]
        models: list[ServedModel] | None
        try:
            models = await list_models(client, protocol, conn, provider, LIST_TIMEOUT_S)
        except ProviderError as exc:
            logger.warning("could not read %s's models list (%s); listing the priced models "
                           "instead for %s", provider, exc, FAILED_TTL)
            models = None
        self._cache[key] = (now, now + (FAILED_TTL if models is None else SERVED_TTL), models)
        return models


def listed(served: Sequence[ServedModel], usable: Mapping[str, Resolution]
           ) -> list[dict[str, str]]:
    """Open WebUI's manifold entries: the served ids that get a price, sorted by id.

    The name is the price row's (an admin's naming wins), else the provider's display
    name, else the resolution's.
    """
    names = {m.id: m.name for m in served}
    out = []
    for model_id in sorted(set(names) & set(usable)):
        res = usable[model_id]
        row_name = None if res.kind == MATCH else res.name
        out.append({"id": model_id, "name": row_name or names[model_id] or res.name or model_id})
    return out
