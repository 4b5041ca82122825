"""Budget alerts: delivery of the threshold crossings the ledger records.

Detection lives where the money is written (``storage.alerts``, in the charge's
transaction); this package sends what it queued: a signed webhook (``webhook``) and
e-mail over SMTP (``mail``), by an :class:`AlertDeliverer`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import URL, Engine

from ..accountant import Accountant
from ..storage import alerts as _store
from ..storage.alerts import AlertRecord, DeliveryState
from .deliverer import AlertDeliverer, DeliveryReport

__all__ = ["AlertDeliverer", "AlertRecord", "DeliveryReport", "DeliveryState", "list_alerts"]


def list_alerts(database: Engine | str | URL | None = None, *, since: datetime | None = None,
                until: datetime | None = None, viewer: str | None = None,
                scope: str | None = None, limit: int = 100,
                offset: int = 0) -> list[AlertRecord]:
    """Alerts newest first. ``viewer`` (a user id) limits them to what that user may see:
    their own and those of the allowances they sponsor; None: all of them."""
    return Accountant(database).run(lambda s: _store.list_alerts(
        s, since=since, until=until, viewer=viewer, scope=scope, limit=limit, offset=offset),
        read_only=True)
