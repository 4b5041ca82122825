"""Budget alerts where the money is written: threshold crossings, events, their outbox.

``counters.apply_spend`` adds a charge to a limit's counter with one
``UPDATE ... RETURNING`` that also returns the limit stored at admission and the
``alert_thresholds`` setting; it then calls :func:`note_spend` with the spend before and
after. A charge that crosses no threshold returns there, without another statement. A
crossing inserts one event per threshold crossed, if absent (unique per scope, subject,
window and threshold: concurrent charges crossing together fire once), and one outbox
row per configured channel, all in the charge's transaction: the alert is committed
exactly when the money is, and a deliverer sends it at least once afterwards.

Scopes are every capped counter's (``storage.scopes``: the user's window, a sponsored
allowance's total and per-user limit, a team budget, a spend cap on a model or provider,
a capped API key): the detection only needs the counter row. An alert about one user
(their window, their caps, their key) is visible to that user.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..accounting.alerts import (
    DEFAULT_THRESHOLDS,
    crossed_thresholds,
    event_payload,
    parse_thresholds,
)
from ..accounting.budget import Window
from .openwebui_tables import user_table
from .schema import (
    AlertDelivery,
    AlertEvent,
    BaseSetting,
    CreditGroup,
    KeyBudget,
    SponsoredAllowance,
)

if TYPE_CHECKING:
    from .counters import CounterKey

logger = logging.getLogger(__name__)

PENDING = "tt_alert_deliveries_pending"
"""``Session.info`` flag: this transaction queued deliveries (a deliverer may start)."""
EVENT_NAMESPACE = uuid.UUID("5b0b6a3e-8f5e-4a51-9f41-2f1c6c7a0e11")
WEBHOOK, EMAIL = "webhook", "email"

event_table = cast(sa.Table, AlertEvent.__table__)
delivery_table = cast(sa.Table, AlertDelivery.__table__)
_settings = cast(sa.Table, BaseSetting.__table__)

THRESHOLDS_SETTING = (
    sa.select(_settings.c.setting_value)
    .where(_settings.c.setting_key == "alert_thresholds")
    .scalar_subquery()
)
"""The thresholds setting, returned by the counter UPDATE itself (no extra round trip)."""


@functools.lru_cache(maxsize=16)
def thresholds_of(text: str | None) -> tuple[int, ...]:
    """The stored thresholds; a missing or broken setting means the defaults."""
    if text is None:
        return DEFAULT_THRESHOLDS
    try:
        return parse_thresholds(text)
    except ValueError:
        logger.warning("alert_thresholds %r is invalid; using %s", text, DEFAULT_THRESHOLDS)
        return DEFAULT_THRESHOLDS


def note_spend(session: Session, key: CounterKey, window: Window | Callable[[], Window], *,
               before: int, after: int, limit_micro: int | None,
               thresholds_text: str | None, at: datetime) -> int:
    """Record the alerts a charge from ``before`` to ``after`` triggered; how many were new.

    Costs nothing (no statement) unless a threshold was crossed. Recording runs in a
    savepoint: if it fails, the alert is lost (and logged), never the charge.
    """
    thresholds = thresholds_of(thresholds_text)
    crossed = crossed_thresholds(before, after, limit_micro, thresholds)
    if not crossed or limit_micro is None:
        return 0
    resolved = window if isinstance(window, Window) else window()
    try:
        with session.begin_nested():  # a failing alert must not take the charge with it
            return record_crossings(session, key, resolved, crossed, thresholds, limit_micro,
                                    after, at)
    except SQLAlchemyError:
        logger.exception("could not record the budget alert of %s %s; the charge stands",
                         key.scope, key.subject)
        return 0


@dataclass
class Subject:
    """Who an alert is about: ids for visibility, names for people."""

    user_id: str | None = None
    allowance_id: uuid.UUID | None = None
    names: dict[str, str | None] = field(default_factory=dict)


def _user_names(session: Session, user_id: str, prefix: str) -> dict[str, str | None]:
    row = session.execute(sa.select(user_table.c.name, user_table.c.email)
                          .where(user_table.c.id == user_id)).first()
    return {f"{prefix}_id": user_id, f"{prefix}_name": row.name if row else None,
            f"{prefix}_email": row.email if row else None}


def _allowance_names(session: Session, allowance_id: str) -> tuple[uuid.UUID, dict[str, Any]]:
    aid = uuid.UUID(allowance_id)
    row = session.execute(sa.select(SponsoredAllowance.name, SponsoredAllowance.sponsor_id)
                          .where(SponsoredAllowance.id == aid)).first()
    names: dict[str, str | None] = {"allowance_id": allowance_id,
                                    "allowance_name": row.name if row else None}
    if row is not None and row.sponsor_id:
        names.update(_user_names(session, row.sponsor_id, "sponsor"))
    return aid, names


def describe_subject(session: Session, scope: str, subject: str) -> Subject:
    """Ids and names of an alert's subject; an unknown scope keeps its raw subject."""
    if scope == "user":
        return Subject(user_id=subject, names=_user_names(session, subject, "user"))
    if scope == "sponsor_user":
        allowance_id, user_id = subject.split(":", 1)
        aid, names = _allowance_names(session, allowance_id)
        return Subject(user_id, aid, {**names, **_user_names(session, user_id, "user")})
    if scope == "sponsor_total":
        aid, names = _allowance_names(session, subject)
        return Subject(allowance_id=aid, names=names)
    if scope == "group_total":
        try:
            gid: uuid.UUID | None = uuid.UUID(subject)
            where = CreditGroup.id == gid
        except ValueError:
            gid, where = None, CreditGroup.name == subject
        name = session.scalar(sa.select(CreditGroup.name).where(where))
        return Subject(names={"group_id": str(gid) if gid else subject, "group_name": name})
    if scope in ("model_cap", "provider_cap"):
        user_id, target = subject.split(":", 1)
        kind = "model" if scope == "model_cap" else "provider"
        return Subject(user_id, names={**_user_names(session, user_id, "user"), kind: target})
    if scope == "api_key":
        owner = session.scalar(sa.select(KeyBudget.user_id).where(KeyBudget.key_id == subject))
        names = _user_names(session, owner, "user") if owner else {}
        return Subject(owner, names={**names, "api_key_id": subject})
    return Subject(names={"id": subject})


def channels_configured(stored: dict[str, str]) -> list[str]:
    """The channels an event is queued for, from the stored settings."""
    channels = []
    if stored.get("alert_webhook_url"):
        channels.append(WEBHOOK)
    if stored.get("alert_smtp_host"):
        channels.append(EMAIL)
    return channels


def _insert(session: Session) -> Callable[[sa.Table], Any]:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def event_key(scope: str, subject: str, window_start: int, percent: int) -> str:
    """The idempotency key of a crossing: the same crossing always gets the same key."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{scope}|{subject}|{window_start}|{percent}"))


def record_crossings(session: Session, key: CounterKey, window: Window, crossed: list[int],
                     thresholds: tuple[int, ...], limit_micro: int, spent_micro: int,
                     at: datetime) -> int:
    """Insert an event per crossed threshold unless it exists, and its outbox rows."""
    subject = describe_subject(session, key.scope, key.subject)
    stored = {k: v for k, v in session.execute(
        sa.select(_settings.c.setting_key, _settings.c.setting_value)
        .where(_settings.c.setting_key.in_(["alert_webhook_url", "alert_smtp_host"])))
        if v}
    channels = channels_configured(stored)
    insert = _insert(session)
    created = 0
    for percent in crossed:
        ekey = event_key(key.scope, key.subject, key.window_start, percent)
        payload = event_payload(
            event_key=ekey, scope=key.scope, subject=subject.names, percent=percent,
            thresholds=thresholds, limit_micro=limit_micro, spent_micro=spent_micro,
            window=window if key.window_start else None, instant=at)
        stmt = insert(event_table).values(
            event_key=ekey, scope=key.scope, subject=key.subject,
            window_start=key.window_start, threshold=percent, limit_micro=limit_micro,
            spent_micro=spent_micro, created_at=at, user_id=subject.user_id,
            sponsored_allowance_id=subject.allowance_id,
            payload=json.dumps(payload, sort_keys=True, separators=(",", ":")),
        ).on_conflict_do_nothing(
            index_elements=["scope", "subject", "window_start", "threshold"],
        ).returning(event_table.c.id)
        event_id = session.execute(stmt).scalar()
        if event_id is None:
            continue  # another charge recorded this crossing first
        created += 1
        logger.info("budget alert: %s %s reached %d%% of its limit", key.scope, key.subject,
                    percent)
        if channels:
            session.execute(sa.insert(delivery_table), [
                {"event_id": event_id, "channel": c, "next_attempt_at": at} for c in channels])
            session.info[PENDING] = True
    return created


# -- reading the history ------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryState:
    channel: str
    status: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class AlertRecord:
    """One alert as stored, with its payload decoded and its deliveries."""

    event_key: str
    scope: str
    subject: str
    threshold: int
    limit_micro: int
    spent_micro: int
    created_at: datetime
    user_id: str | None
    allowance_id: uuid.UUID | None
    payload: dict[str, Any]
    deliveries: list[DeliveryState]


def who(record: AlertRecord) -> str:
    """A short human name of an alert's subject (allowance / group / user)."""
    names = record.payload.get("subject") or {}
    parts = [names.get(k) for k in ("allowance_name", "group_name", "user_name", "model",
                                    "provider", "api_key_id")]
    return " / ".join(str(p) for p in parts if p) or record.subject


def visible_to(viewer: str) -> sa.ColumnElement[bool]:
    """Alerts a non-admin may see: their own, and those of allowances they sponsor."""
    sponsored = sa.select(SponsoredAllowance.id).where(SponsoredAllowance.sponsor_id == viewer)
    return sa.or_(event_table.c.user_id == viewer,
                  event_table.c.sponsored_allowance_id.in_(sponsored))


def list_alerts(session: Session, *, since: datetime | None = None,
                until: datetime | None = None, viewer: str | None = None,
                scope: str | None = None, limit: int = 100,
                offset: int = 0) -> list[AlertRecord]:
    """Alerts newest first; ``viewer`` None: all (admins), else what the viewer may see."""
    e = event_table.c
    q = sa.select(event_table).order_by(e.created_at.desc(), e.id.desc())
    if since is not None:
        q = q.where(e.created_at >= since)
    if until is not None:
        q = q.where(e.created_at < until)
    if viewer is not None:
        q = q.where(visible_to(viewer))
    if scope is not None:
        q = q.where(e.scope == scope)
    rows = session.execute(q.limit(limit).offset(offset)).all()
    deliveries: dict[int, list[DeliveryState]] = {}
    if rows:
        d = delivery_table.c
        for r in session.execute(sa.select(delivery_table)
                                 .where(d.event_id.in_([row.id for row in rows]))
                                 .order_by(d.channel)):
            deliveries.setdefault(r.event_id, []).append(DeliveryState(
                r.channel, r.status, r.attempts, r.next_attempt_at, r.delivered_at,
                r.last_error))
    return [AlertRecord(r.event_key, r.scope, r.subject, r.threshold, r.limit_micro,
                        r.spent_micro, r.created_at, r.user_id, r.sponsored_allowance_id,
                        json.loads(r.payload), deliveries.get(r.id, []))
            for r in rows]
