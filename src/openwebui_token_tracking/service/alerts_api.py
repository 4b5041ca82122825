"""``GET /api/v1/alerts``: budget alerts fired, newest first.

Admins see every alert. Anyone else sees the alerts about themselves (their own window,
their per-user limit of a sponsored allowance) and those of the allowances they
sponsor; a delivery's error text is for admins only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ..accounting.money import micro_to_credits
from ..storage import alerts
from ..storage.alerts import AlertRecord
from .api import ERRORS, Since, Until, time_range
from .deps import Caller, State

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class DeliveryOut(BaseModel):
    channel: str = Field(description="webhook or email")
    status: str = Field(description="pending, delivered or failed (gave up)")
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None = Field(description="admins only")


class AlertOut(BaseModel):
    id: str = Field(description="the event's idempotency key (as sent to the webhook)")
    created_at: datetime
    scope: str = Field(description="user, sponsor_user, sponsor_total, group_total, ...")
    subject: str
    threshold_percent: int
    limit: Decimal
    spent: Decimal
    user_id: str | None
    allowance_id: uuid.UUID | None
    payload: dict[str, Any] = Field(description="the JSON body the webhook receives")
    deliveries: list[DeliveryOut]

    @classmethod
    def of(cls, r: AlertRecord, admin: bool) -> AlertOut:
        return cls(
            id=r.event_key, created_at=r.created_at, scope=r.scope, subject=r.subject,
            threshold_percent=r.threshold, limit=micro_to_credits(r.limit_micro),
            spent=micro_to_credits(r.spent_micro), user_id=r.user_id,
            allowance_id=r.allowance_id, payload=r.payload,
            deliveries=[DeliveryOut(channel=d.channel, status=d.status, attempts=d.attempts,
                                    next_attempt_at=d.next_attempt_at,
                                    delivered_at=d.delivered_at,
                                    last_error=d.last_error if admin else None)
                        for d in r.deliveries])


@router.get("/alerts", response_model=list[AlertOut], tags=["alerts"])
def list_alerts(st: State, caller: Caller, since: Since = None, until: Until = None,
                scope: Annotated[str | None, Query(max_length=16)] = None,
                offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AlertOut]:
    """Budget alerts in a range (default: the last 30 days), newest first."""
    start, end = time_range(st, since, until)
    viewer = None if caller.is_admin else caller.user_id
    records = st.run(lambda s: alerts.list_alerts(s, since=start, until=end, viewer=viewer,
                                                  scope=scope, limit=limit, offset=offset))
    return [AlertOut.of(r, caller.is_admin) for r in records]
