"""Sponsored allowances: the models each covers, its limits and expiry."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from ..accounting.budget import TOTAL
from ..errors import AlreadyExistsError, InvalidInputError, NotFoundError
from .counters import SPONSOR_TOTAL, CounterKey, ensure_counter
from .schema import SponsoredAllowance, SponsoredAllowanceBaseModels


def _limit(name: str, value: int | None, *, optional: bool) -> int | None:
    if value is None:
        if optional:
            return None
        raise InvalidInputError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be a whole number of credits, got {value!r}")
    if value < 0:
        raise InvalidInputError(f"{name} must not be negative, got {value}")
    return value


def _models(models: Iterable[str]) -> list[str]:
    if isinstance(models, str):
        models = [models]
    ids = sorted({m.strip() for m in models if m and m.strip()})
    if not ids:
        raise InvalidInputError("a sponsored allowance must cover at least one model")
    return ids


def parse_allowance_id(value: str | uuid.UUID) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidInputError(f"not a sponsored allowance id: {value!r}") from exc


def find_allowance(session: Session, *, name: str | None = None,
                   allowance_id: str | uuid.UUID | None = None,
                   with_models: bool = True) -> SponsoredAllowance | None:
    """Look an allowance up by name and/or id (its covered models loaded unless told not)."""
    if name is None and allowance_id is None:
        raise InvalidInputError("give a sponsored allowance name or id")
    q = sa.select(SponsoredAllowance)
    if with_models:
        q = q.options(selectinload(SponsoredAllowance.base_models))
    if allowance_id is not None:
        q = q.where(SponsoredAllowance.id == parse_allowance_id(allowance_id))
    if name is not None:
        q = q.where(SponsoredAllowance.name == name)
    return session.scalars(q).first()


def get_allowance(session: Session, *, name: str | None = None,
                  allowance_id: str | uuid.UUID | None = None,
                  with_models: bool = True) -> SponsoredAllowance:
    found = find_allowance(session, name=name, allowance_id=allowance_id,
                           with_models=with_models)
    if found is None:
        what = f"id {allowance_id}" if allowance_id is not None else f"name {name!r}"
        raise NotFoundError(f"sponsored allowance with {what} does not exist")
    return found


@dataclass(frozen=True)
class AllowanceLimits:
    """What a balance needs of an allowance, read without the ORM (hot path)."""

    id: uuid.UUID
    name: str
    total_credit_limit: int
    daily_credit_limit: int | None


_allowances = cast(sa.Table, SponsoredAllowance.__table__)
_LIMITS = sa.select(_allowances.c.id, _allowances.c.name, _allowances.c.total_credit_limit,
                    _allowances.c.daily_credit_limit)
_LIMITS_BY_NAME = _LIMITS.where(_allowances.c.name == sa.bindparam("name"))
_LIMITS_BY_ID = _LIMITS.where(_allowances.c.id == sa.bindparam("id", type_=sa.Uuid))


def allowance_limits(session: Session, *, name: str | None = None,
                     allowance_id: str | uuid.UUID | None = None) -> AllowanceLimits:
    """An allowance's id, name and limits in one Core query; ``NotFoundError`` if none."""
    if allowance_id is not None:
        row = session.execute(_LIMITS_BY_ID, {"id": parse_allowance_id(allowance_id)}).first()
        if row is not None and name is not None and row.name != name:
            row = None
    elif name is not None:
        row = session.execute(_LIMITS_BY_NAME, {"name": name}).first()
    else:
        raise InvalidInputError("give a sponsored allowance name or id")
    if row is None:
        what = f"id {allowance_id}" if allowance_id is not None else f"name {name!r}"
        raise NotFoundError(f"sponsored allowance with {what} does not exist")
    return AllowanceLimits(row.id, row.name, int(row.total_credit_limit),
                           None if row.daily_credit_limit is None
                           else int(row.daily_credit_limit))


def list_allowances(session: Session, sponsor_id: str | None = None) -> list[SponsoredAllowance]:
    q = (sa.select(SponsoredAllowance).options(selectinload(SponsoredAllowance.base_models))
         .order_by(SponsoredAllowance.name))
    if sponsor_id is not None:
        q = q.where(SponsoredAllowance.sponsor_id == sponsor_id)
    return list(session.scalars(q))


def create_allowance(session: Session, *, name: str, sponsor_id: str | None,
                     models: Iterable[str], total_credit_limit: int,
                     daily_credit_limit: int | None, now: datetime,
                     expires_at: datetime | None = None) -> SponsoredAllowance:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("sponsored allowance name must not be empty")
    name = name.strip()
    if "---" in name:
        raise InvalidInputError("sponsored allowance name must not contain '---'")
    total = _limit("total credit limit", total_credit_limit, optional=False)
    daily = _limit("daily credit limit", daily_credit_limit, optional=True)
    ids = _models(models)
    if find_allowance(session, name=name) is not None:
        raise AlreadyExistsError(f"sponsored allowance {name!r} already exists")
    allowance = SponsoredAllowance(
        id=uuid.uuid4(), name=name, sponsor_id=sponsor_id, total_credit_limit=total,
        daily_credit_limit=daily, creation_date=now, expires_at=expires_at,
    )
    allowance.base_models = [SponsoredAllowanceBaseModels(base_model_id=m) for m in ids]
    session.add(allowance)
    session.flush()
    # Its total counter exists from the start, so no check ever sums its history.
    ensure_counter(session, CounterKey(SPONSOR_TOTAL, str(allowance.id), 0), TOTAL)
    return allowance


_UNSET = object()


def update_allowance(session: Session, allowance: SponsoredAllowance, *,
                     new_name: str | None = None, sponsor_id: str | None = None,
                     models: Iterable[str] | None = None,
                     total_credit_limit: int | None = None,
                     daily_credit_limit: object = _UNSET,
                     expires_at: object = _UNSET) -> SponsoredAllowance:
    """Change the given fields; ``daily_credit_limit``/``expires_at`` accept None to clear."""
    if new_name is not None:
        new_name = new_name.strip()
        if not new_name or "---" in new_name:
            raise InvalidInputError("new name must be non-empty and must not contain '---'")
        other = find_allowance(session, name=new_name)
        if other is not None and other.id != allowance.id:
            raise AlreadyExistsError(f"sponsored allowance {new_name!r} already exists")
        allowance.name = new_name
    if sponsor_id is not None:
        allowance.sponsor_id = sponsor_id
    if total_credit_limit is not None:
        _limit("total credit limit", total_credit_limit, optional=False)
        allowance.total_credit_limit = total_credit_limit
    if daily_credit_limit is not _UNSET:
        allowance.daily_credit_limit = _limit(
            "daily credit limit", daily_credit_limit, optional=True)  # type: ignore[arg-type]
    if expires_at is not _UNSET:
        allowance.expires_at = expires_at  # type: ignore[assignment]
    if models is not None:
        ids = _models(models)
        allowance.base_models = [SponsoredAllowanceBaseModels(base_model_id=m) for m in ids]
    session.flush()
    return allowance


def delete_allowance(session: Session, allowance: SponsoredAllowance) -> None:
    """Delete an allowance; its usage rows stay in the ledger with its id."""
    session.delete(allowance)
    session.flush()


def covered_models(allowance: SponsoredAllowance) -> list[str]:
    return [m.base_model_id for m in allowance.base_models]
