"""Spend caps: at most N credits per budget window on a model or a provider, per user.

A cap of the base (no credit group) applies to everyone; a credit group's cap replaces
it for the group's members, and the largest of several groups' caps wins
(``accounting.limits``). Caps bound only the user's own allowance: sponsored usage and
free models are not capped. A model cap matches the model id under any provider.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import InvalidInputError, NotFoundError
from .groups import get_group
from .schema import CreditGroup, SpendCap
from .scopes import MODEL_CAP, PROVIDER_CAP

KINDS = {"model": MODEL_CAP, "provider": PROVIDER_CAP}
MAX_CREDITS = 10**12


@dataclass(frozen=True)
class Cap:
    group: str | None
    """The credit group's name; None for the base cap."""
    kind: str
    """``model`` or ``provider``."""
    target: str
    credit_limit: int
    """Whole credits per budget window."""


def _scope(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInputError(f"a cap is on a model or a provider, got {kind!r}")
    return KINDS[kind]


def _target(target: str) -> str:
    if not isinstance(target, str) or not target.strip():
        raise InvalidInputError("give the model id or provider the cap is on")
    if len(target.strip()) > 255:
        raise InvalidInputError("a model id or provider has at most 255 characters")
    return target.strip()


def check_credits(value: object, what: str = "cap") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be a whole number of credits, got {value!r}")
    if not 0 <= value <= MAX_CREDITS:
        raise InvalidInputError(f"{what} must be from 0 to 10^12 credits, got {value}")
    return value


def _find(session: Session, scope: str, target: str, group_id: object) -> SpendCap | None:
    owner = (SpendCap.credit_group_id.is_(None) if group_id is None
             else SpendCap.credit_group_id == group_id)
    return session.scalars(sa.select(SpendCap).where(
        owner, SpendCap.scope == scope, SpendCap.target == target)).first()


def set_cap(session: Session, *, kind: str, target: str, credit_limit: int,
            group: str | None = None) -> Cap:
    """Create or change a cap of the base (``group`` None) or of a credit group."""
    scope, target = _scope(kind), _target(target)
    check_credits(credit_limit)
    owner = get_group(session, group) if group is not None else None
    row = _find(session, scope, target, owner.id if owner else None)
    if row is None:
        row = SpendCap(credit_group_id=owner.id if owner else None, scope=scope,
                       target=target, credit_limit=credit_limit)
        session.add(row)
    else:
        row.credit_limit = credit_limit
    session.flush()
    return Cap(owner.name if owner else None, kind, target, credit_limit)


def remove_cap(session: Session, *, kind: str, target: str, group: str | None = None) -> None:
    scope, target = _scope(kind), _target(target)
    owner = get_group(session, group) if group is not None else None
    row = _find(session, scope, target, owner.id if owner else None)
    if row is None:
        whose = f"credit group {owner.name!r}" if owner else "the base allowance"
        raise NotFoundError(f"{whose} has no cap on {kind} {target!r}")
    session.delete(row)
    session.flush()


def list_caps(session: Session, group: str | None = None) -> list[Cap]:
    """Every cap (base first, then by group name), or those of one credit group."""
    query = (sa.select(CreditGroup.name, SpendCap.scope, SpendCap.target,
                       SpendCap.credit_limit)
             .select_from(SpendCap)
             .outerjoin(CreditGroup, CreditGroup.id == SpendCap.credit_group_id))
    if group is not None:
        query = query.where(SpendCap.credit_group_id == get_group(session, group).id)
    kinds = {scope: kind for kind, scope in KINDS.items()}
    caps = [Cap(name, kinds[scope], target, int(limit))
            for name, scope, target, limit in session.execute(query)]
    return sorted(caps, key=lambda c: (c.group is not None, c.group or "", c.kind, c.target))
