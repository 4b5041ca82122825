"""The ledger and atomic admission: reserve, settle, release, record.

Every function takes a ``Session`` inside a transaction the caller owns
(``with session.begin():``) and takes ``now`` as an aware UTC instant.

Admission is one conditional write per limit (``counters.reserve_one``)::

    UPDATE token_tracking_budget_counter
       SET reserved_micro = reserved_micro + :estimate
     WHERE <scope, subject, window> AND spent_micro + reserved_micro + :estimate <= :limit

PostgreSQL re-checks the condition on the locked row, SQLite runs write transactions
one at a time (``BEGIN IMMEDIATE``), so concurrent requests cannot all pass the same
check: what is admitted never exceeds the limit by more than the difference between an
admitted request's estimate and its actual charge.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..accounting.budget import TOTAL, Window, window_for
from ..accounting.limits import minute_window
from ..accounting.money import micro_to_credits
from ..accounting.pricing import Price, charge, is_free
from ..accounting.usage import Usage
from ..errors import (
    AllowanceExpiredError,
    InvalidInputError,
    ModelNotCoveredError,
)
from . import rate_limits
from .aliases import resolve_price
from .counters import (
    API_KEY,
    GROUP_TOTAL,
    MODEL_CAP,
    SPONSOR_TOTAL,
    SPONSOR_USER,
    USER,
    CounterKey,
    Limit,
    apply_spend,
    own_request_limits,
    request_terms,
    reserve_one,
    sponsor_limits,
    usage_log,
)
from .key_budgets import key_limit, key_limit_of
from .prepared import fixed_values, run
from .prices import price_at
from .schema import Reservation, SponsoredAllowance
from .settings_store import BudgetSettings, budget_settings, budget_settings_from
from .sponsors import covered_models
from .user_state import UserTerms, admission_terms

logger = logging.getLogger(__name__)

STATUSES = ("completed", "stopped", "error", "estimated")

reservation_table = cast(sa.Table, Reservation.__table__)


@dataclass(frozen=True)
class Admitted:
    """A reservation held for a request in flight."""

    reservation_id: str
    estimate_micro: int
    price: Price
    free: bool
    one_limit: bool = False
    """It holds only the user's own counter: on PostgreSQL it can be settled in one
    statement (``storage.at_once``)."""


# -- limits -------------------------------------------------------------------------------

def check_allowance_usable(allowance: SponsoredAllowance, model_id: str, now: datetime) -> None:
    if model_id not in covered_models(allowance):
        raise ModelNotCoveredError(
            f"sponsored allowance {allowance.name!r} does not cover model {model_id!r}; "
            f"it covers: {', '.join(covered_models(allowance))}"
        )
    if allowance.expires_at is not None and now >= allowance.expires_at:
        raise AllowanceExpiredError(
            f"sponsored allowance {allowance.name!r} expired at "
            f"{allowance.expires_at.isoformat()}", remaining=micro_to_credits(0),
            reason="allowance_expired")


class NeedsTransaction(Exception):  # noqa: N818  (a signal, not a failure)
    """``plan(..., may_write=False)`` met a write (a model id's first price): plan the
    admission again in a transaction. Never leaves the package."""


def _resolve(session: Session, provider: str, model_id: str, now: datetime,
             may_write: bool) -> Price:
    if not may_write:
        raise NeedsTransaction(f"{provider}/{model_id} has no price recorded yet")
    return resolve_price(session, provider, model_id, now)


def require_price(session: Session, provider: str, model_id: str, now: datetime) -> Price:
    """The price in force; a model id without one is resolved through genai-prices'
    matching once (``aliases.resolve_price``) or refused with ``UnknownModelError``."""
    price = price_at(session, provider, model_id, now)
    return price if price is not None else resolve_price(session, provider, model_id, now)


@dataclass(frozen=True)
class Plan:
    """An admission worked out from the user's terms (``plan``), before anything is
    written: the reservation row and the limits to hold its estimate on (``hold``)."""

    row: dict[str, object]
    """The reservation row, every column."""
    holds: list[Limit]
    """In the order they are locked (the user's allowance first)."""
    rates: rate_limits.RateLimits | None
    rate_tokens: int
    estimate_micro: int
    price: Price
    free: bool
    enforce: bool
    now: datetime

    @property
    def reservation_id(self) -> str:
        return str(self.row["id"])

    @property
    def user_id(self) -> str:
        return str(self.row["user_id"])

    def admitted(self) -> Admitted:
        one = self.one_hold
        return Admitted(self.reservation_id, self.estimate_micro, self.price, self.free,
                        one is not None and one.key.scope == USER)

    @property
    def one_hold(self) -> Limit | None:
        """The only limit, when the whole admission is one conditional write on it:
        enforced, priced, no rate limit to count (see ``storage.at_once``)."""
        if (self.enforce and self.rates is None and len(self.holds) == 1
                and self.estimate_micro > 0 and self.holds[0].limit_micro is not None):
            return self.holds[0]
        return None


def reserve(session: Session, **request: Any) -> Admitted:
    """Admit a request and hold its estimated cost, or raise a limit error
    (``plan`` then ``hold`` in the caller's transaction; arguments as ``plan``'s)."""
    return hold(session, plan(session, **request))


def plan(
    session: Session,
    *,
    user_id: str,
    provider: str,
    model_id: str,
    estimate: Usage,
    now: datetime,
    allowance: SponsoredAllowance | None = None,
    enforce: bool = True,
    chat_id: str | None = None,
    message_id: str | None = None,
    task: str | None = None,
    settings: BudgetSettings | None = None,
    api_key_id: str | None = None,
    entry_point: str | None = None,
    reservation_id: str | None = None,
    may_write: bool = True,
    terms: UserTerms | None = None,
) -> Plan:
    """Read what an admission needs and work out what ``hold`` writes.

    A model id without a price is resolved first, which records its price
    (``aliases.resolve_price``); with ``may_write=False`` (no transaction around the
    reads) ``NeedsTransaction`` is raised instead. ``terms``: the user's terms already
    read (``admission_terms`` at ``now``), for the user's own allowance.

    ``enforce=False`` (Open WebUI background tasks) reserves without checking limits.
    Free models are always admitted. Unpriced models raise ``UnknownModelError``.
    A paid request on the user's own allowance also holds its spend caps and team
    budgets, and counts against the rate limits (``rate_limits``): each one more
    conditional write.
    ``api_key_id``: the key the request came with; a capped key is one more limit.
    """
    if not user_id:
        raise InvalidInputError("a user id is required to charge a request")
    if allowance is None:  # the user's terms, the settings and the price: one round trip
        if terms is None:
            terms = admission_terms(session, user_id, provider, model_id, api_key_id, now)
        price = terms.price or _resolve(session, provider, model_id, now, may_write)
        settings = settings or budget_settings_from(session, terms.settings)
    else:
        price = (price_at(session, provider, model_id, now)
                 or _resolve(session, provider, model_id, now, may_write))
        check_allowance_usable(allowance, model_id, now)
        settings = settings or budget_settings(session)
    free = is_free(price)
    estimate_micro = 0 if free else charge(estimate, price).micro_credits
    limits: list[Limit] = []
    rates: rate_limits.RateLimits | None = None
    key: Limit | None = None
    if allowance is not None:
        if not free:
            limits = sponsor_limits(allowance, user_id, now, settings)
    elif not free and terms is not None:
        limits = own_request_limits(terms, user_id, now, settings)
        rates = rate_limits.RateLimits(*terms.rate_limits(settings.requests_per_minute,
                                                          settings.tokens_per_minute))
        if not (enforce and rates.active):  # background tasks are neither counted nor refused
            rates = None
        if api_key_id is not None:  # its cap came with the terms
            key = key_limit_of(terms.key_cap_micro, api_key_id, now, settings)
    if not free and allowance is not None and api_key_id is not None:
        key = key_limit(session, api_key_id, now, settings)
    rate_tokens = estimate.total_tokens if rates is not None else 0
    row: dict[str, object] = dict(
        id=reservation_id or str(uuid.uuid4()), user_id=user_id, provider=provider,
        model_id=model_id, sponsored_allowance_id=allowance.id if allowance else None,
        estimate_micro=estimate_micro,
        window_start=limits[-1].key.window_start if limits else 0,
        estimate_input_tokens=estimate.prompt_tokens,
        estimate_output_tokens=estimate.response_tokens,
        created_at=now, expires_at=now + timedelta(seconds=settings.reservation_ttl_seconds),
        chat_id=chat_id, message_id=message_id, task=task, api_key_id=api_key_id,
        api_key_window=None if key is None else key.key.window_start, entry_point=entry_point,
        held_counters=_held_counters(limits) if allowance is None else None,
        rate_tokens=rate_tokens, rate_minute=None if rates is None else minute_window(now).key,
    )
    return Plan(row, limits if key is None else [*limits, key], rates, rate_tokens,
                estimate_micro, price, free, enforce, now)


def hold(session: Session, plan: Plan) -> Admitted:
    """Write the reservation and hold its estimate on each limit, or raise a refusal.

    The reservation row is written before the counters: if its id is already taken, an
    earlier try of this same admission committed, and its admission is returned without
    reserving again.
    """
    rid = plan.reservation_id
    inserted = run(session, _reservation_insert(session.get_bind().dialect.name),
                   plan.row).first()
    if inserted is None:
        held_micro = session.scalar(sa.select(reservation_table.c.estimate_micro)
                                    .where(reservation_table.c.id == rid))
        logger.warning("admission %s was already committed by an earlier try", rid)
        return Admitted(rid, int(held_micro if held_micro is not None else plan.estimate_micro),
                        plan.price, plan.free)
    if plan.rates is not None:
        rate_limits.admit(session, plan.user_id, plan.rates, plan.rate_tokens, plan.now)
    for limit in plan.holds:
        reserve_one(session, limit, plan.estimate_micro, plan.enforce)
    return plan.admitted()


def _held_counters(limits: list[Limit]) -> str | None:
    """What a reservation holds besides the user's counter (``Reservation.held_counters``)."""
    held = [lim.key.scope if lim.key.scope != GROUP_TOTAL else f"{GROUP_TOTAL}:{lim.key.subject}"
            for lim in limits[1:]]
    return " ".join(held) or None


def stored_window(session: Session, created: datetime, start: int,
                  settings: BudgetSettings | None = None) -> Window:
    """The window a reservation made at ``created`` held in, starting at its stored
    ``start`` (the settings may have changed since)."""
    current = settings or budget_settings(session)
    w = window_for(created, current.period, current.timezone)
    if w.key != start:  # settings changed mid-request: keep the stored start
        w = Window(datetime.fromtimestamp(start, created.tzinfo), w.end)
    return w


def _reservation_limit_keys(session: Session, res: sa.Row[tuple[object, ...]],
                            settings: BudgetSettings | None
                            ) -> list[tuple[CounterKey, Callable[[], Window]]]:
    """The counters a reservation touched, each with its window computed only if needed
    (to rebuild a missing counter from the ledger), so settling reads no settings."""
    created: datetime = res.created_at

    def window() -> Window:
        return stored_window(session, created, res.window_start, settings)

    def key_window() -> Window:
        return stored_window(session, created, res.api_key_window, settings)

    capped_key = ([(CounterKey(API_KEY, res.api_key_id, res.api_key_window), key_window)]
                  if res.api_key_window is not None else [])
    if res.sponsored_allowance_id is None:
        own = [(CounterKey(USER, res.user_id, res.window_start), window)]
        for held in (res.held_counters or "").split():
            scope, _, group = held.partition(":")
            subject = group if scope == GROUP_TOTAL else \
                f"{res.user_id}:{res.model_id if scope == MODEL_CAP else res.provider}"
            own.append((CounterKey(scope, subject, res.window_start), window))
        return [*own, *capped_key]
    aid = str(res.sponsored_allowance_id)
    keys = [(CounterKey(SPONSOR_TOTAL, aid, 0), lambda: TOTAL)]
    if res.window_start:
        keys.append((CounterKey(SPONSOR_USER, f"{aid}:{res.user_id}", res.window_start), window))
    return [*keys, *capped_key]


_TAKE_RESERVATION = (sa.delete(reservation_table)
                     .where(reservation_table.c.id == sa.bindparam("rid"))
                     .returning(*reservation_table.c))


def _take_reservation(session: Session, reservation_id: str) -> sa.Row[tuple[object, ...]] | None:
    """Delete a reservation and return it; None if another process settled it first."""
    return run(session, _TAKE_RESERVATION, {"rid": reservation_id}).first()


def _insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT DO NOTHING on either backend."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


# Built once per backend; executions only bind values (building and caching an INSERT
# with literal values costs more than the database's work on it).
# Every column is given (``fixed_values``), so they run prepared (``prepared.run``).
@functools.cache
def _reservation_insert(dialect: str) -> sa.Insert:
    return (fixed_values(_insert(dialect, reservation_table), reservation_table)
            .on_conflict_do_nothing().returning(reservation_table.c.estimate_micro))


@functools.cache
def _usage_insert(dialect: str, keyed: bool) -> sa.Insert:
    stmt = fixed_values(_insert(dialect, usage_log), usage_log)
    if keyed:  # a (chat, message) already charged is dropped, not charged twice
        stmt = stmt.on_conflict_do_nothing(index_elements=["chat_id", "message_id"])
    return stmt.returning(usage_log.c.id)


def _insert_usage(session: Session, values: dict[str, object]) -> int | None:
    """Insert a ledger row; None when (chat_id, message_id) was already charged."""
    keyed = values.get("chat_id") is not None and values.get("message_id") is not None
    row = run(session, _usage_insert(session.get_bind().dialect.name, keyed), values).first()
    return None if row is None else int(row[0])


def _usage_values(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens, "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_tokens": usage.cache_write_tokens, "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def settle(session: Session, reservation_id: str, usage: Usage, *, status: str = "completed",
           charged_micro: int | None = None, price: Price | None = None,
           settings: BudgetSettings | None = None, now: datetime | None = None) -> int | None:
    """Turn a reservation into a ledger row charged for ``usage``; returns the row id.

    ``price`` is the price admission returned (``Admitted.price``, in force at the
    reservation's instant); without it the price is looked up again. ``now`` dates the
    budget alerts the charge may trigger (default: the reservation's instant).
    Returns None when the reservation was already settled or expired (nothing charged
    twice), or when the same (chat, message) was already charged.
    """
    if status not in STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    res = _take_reservation(session, reservation_id)
    if res is None:
        logger.warning("reservation %s was already settled or expired", reservation_id)
        return None
    if charged_micro is None:
        price = price or price_at(session, res.provider, res.model_id, res.created_at,
                                  listed_only=False)
        charged_micro = charge(usage, price).micro_credits if price else res.estimate_micro
    row_id = _insert_usage(session, {
        "created_at": res.created_at, "user_id": res.user_id, "provider": res.provider,
        "model_id": res.model_id, "sponsored_allowance_id": res.sponsored_allowance_id,
        **_usage_values(usage), "charged_micro": charged_micro, "status": status,
        "chat_id": res.chat_id, "message_id": res.message_id, "task": res.task,
        "api_key_id": res.api_key_id, "entry_point": res.entry_point,
    })
    charged = charged_micro if row_id is not None else 0
    if res.estimate_micro or charged:
        for key, window in _reservation_limit_keys(session, res, settings):
            apply_spend(session, key, window, charged, res.estimate_micro,
                        at=now or res.created_at)
    if res.rate_minute is not None:
        rate_limits.settle(session, res.user_id, res.rate_minute, res.rate_tokens,
                           usage.total_tokens if row_id is not None else 0)
    return row_id


def release(session: Session, reservation_id: str, settings: BudgetSettings | None = None
            ) -> bool:
    """Give back a reservation of a request that used nothing (failed before any token)."""
    res = _take_reservation(session, reservation_id)
    if res is None:
        return False
    if res.estimate_micro:
        for key, window in _reservation_limit_keys(session, res, settings):
            apply_spend(session, key, window, 0, res.estimate_micro)
    if res.rate_minute is not None:  # the request still counts, its tokens do not
        rate_limits.settle(session, res.user_id, res.rate_minute, res.rate_tokens, 0)
    return True


SWEEP_EVERY = timedelta(seconds=10)
"""How often (in request time) an entry point settles expired reservations."""


def any_expired(session: Session, now: datetime) -> bool:
    """Whether some reservation expired (a read, taking no write lock)."""
    return session.scalar(sa.select(reservation_table.c.id)
                          .where(reservation_table.c.expires_at <= now).limit(1)) is not None


def settle_expired(session: Session, now: datetime, batch: int = 50) -> int:
    """Charge reservations whose process died at their estimate, flagged ``estimated``."""
    ids = list(session.scalars(
        sa.select(reservation_table.c.id).where(reservation_table.c.expires_at <= now)
        .order_by(reservation_table.c.expires_at).limit(batch)
    ))
    settled = 0
    for rid in ids:
        row = session.execute(sa.select(reservation_table).where(
            reservation_table.c.id == rid)).first()
        if row is None:
            continue
        estimate = Usage(input_tokens=row.estimate_input_tokens,
                         output_tokens=row.estimate_output_tokens)
        if settle(session, rid, estimate, status="estimated",
                  charged_micro=row.estimate_micro, now=now) is not None:
            settled += 1
            logger.warning("reservation %s of user %s expired unsettled; charged its estimate",
                           rid, row.user_id)
    return settled


def record_usage(
    session: Session,
    *,
    user_id: str,
    provider: str,
    model_id: str,
    usage: Usage,
    now: datetime,
    allowance: SponsoredAllowance | None = None,
    status: str = "completed",
    chat_id: str | None = None,
    message_id: str | None = None,
    task: str | None = None,
    settings: BudgetSettings | None = None,
    entry_point: str | None = None,
) -> int | None:
    """Charge usage that was not reserved first (0.1.10's ``log_token_usage``, filters).

    No limit is checked: the tokens are already spent. Returns the new row id, or None
    if this (chat, message) was already charged.
    """
    if status not in STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    if allowance is not None and model_id not in covered_models(allowance):
        raise ModelNotCoveredError(
            f"sponsored allowance {allowance.name!r} does not cover model {model_id!r}")
    price = require_price(session, provider, model_id, now)
    charged = charge(usage, price).micro_credits
    row_id = _insert_usage(session, {
        "created_at": now, "user_id": user_id, "provider": provider, "model_id": model_id,
        "sponsored_allowance_id": allowance.id if allowance else None, **_usage_values(usage),
        "charged_micro": charged, "status": status, "chat_id": chat_id,
        "message_id": message_id, "task": task, "api_key_id": None,
        "entry_point": entry_point,
    })
    if row_id is None or not charged:  # free models are exempt from every limit
        return row_id
    if allowance is not None:
        settings = settings or budget_settings(session)
        limits = sponsor_limits(allowance, user_id, now, settings)
    else:
        limits, terms, settings = request_terms(session, user_id, now, settings, provider,
                                                model_id)
        rates = terms.rate_limits(settings.requests_per_minute, settings.tokens_per_minute)
        if rates[1] is not None:
            rate_limits.add_tokens(session, user_id, usage.total_tokens, now)
    for limit in limits:
        apply_spend(session, limit.key, limit.window, charged, 0, at=now,
                    cap=limit.limit_micro)
    return row_id
