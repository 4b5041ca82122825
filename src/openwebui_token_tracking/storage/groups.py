"""Credit groups and their members."""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import AlreadyExistsError, InvalidInputError, NotFoundError
from .openwebui_groups import credit_group_members, group_tables
from .schema import CreditGroup, CreditGroupUser
from .user_state import admission_terms
from .users import require_user


def _check_allowance(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"credit allowance must be a whole number, got {value!r}")
    if value < 0:
        raise InvalidInputError(f"credit allowance must not be negative, got {value}")
    return value


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("credit group name must not be empty")
    return name.strip()


def find_group(session: Session, name: str) -> CreditGroup | None:
    """Case-insensitive lookup (Unicode case folding, e.g. "É" matches "é").

    Compared in Python because SQLite's ``lower()`` folds ASCII only; groups are few.
    """
    wanted = name.strip().casefold()
    for group in session.scalars(sa.select(CreditGroup)):
        if group.name.casefold() == wanted:
            return group
    return None


def get_group(session: Session, name: str) -> CreditGroup:
    group = find_group(session, name)
    if group is None:
        raise NotFoundError(f"credit group {name!r} does not exist")
    return group


def create_group(session: Session, name: str, max_credit: int,
                 description: str | None = None) -> CreditGroup:
    name = _check_name(name)
    _check_allowance(max_credit)
    if find_group(session, name) is not None:
        raise AlreadyExistsError(f"credit group {name!r} already exists")
    group = CreditGroup(name=name, max_credit=max_credit, description=description)
    session.add(group)
    session.flush()
    return group


def update_group(session: Session, name: str, *, max_credit: int | None = None,
                 description: str | None = None, new_name: str | None = None) -> CreditGroup:
    if max_credit is None and description is None and new_name is None:
        raise InvalidInputError("give at least one of: allowance, description, new name")
    group = get_group(session, name)
    if max_credit is not None:
        group.max_credit = _check_allowance(max_credit)
    if description is not None:
        group.description = description
    if new_name is not None:
        new_name = _check_name(new_name)
        other = find_group(session, new_name)
        if other is not None and other.id != group.id:
            raise AlreadyExistsError(f"credit group {new_name!r} already exists")
        group.name = new_name
    session.flush()
    return group


def member_count(session: Session, group: CreditGroup) -> int:
    return session.scalar(
        sa.select(sa.func.count()).select_from(CreditGroupUser)
        .where(CreditGroupUser.credit_group_id == group.id)
    ) or 0


def delete_group(session: Session, name: str, *, force: bool = False) -> None:
    group = get_group(session, name)
    count = member_count(session, group)
    if count and not force:
        raise InvalidInputError(
            f"credit group {group.name!r} has {count} member(s); use force to delete anyway"
        )
    session.execute(sa.delete(CreditGroupUser).where(CreditGroupUser.credit_group_id == group.id))
    session.delete(group)
    session.flush()


def add_member(session: Session, name: str, user_id: str) -> None:
    group = get_group(session, name)
    require_user(session, user_id)
    if session.get(CreditGroupUser, (group.id, user_id)) is None:
        session.add(CreditGroupUser(credit_group_id=group.id, user_id=user_id))
    session.flush()


def remove_member(session: Session, name: str, user_id: str) -> None:
    group = get_group(session, name)
    row = session.get(CreditGroupUser, (group.id, user_id))
    if row is None:
        raise NotFoundError(f"user {user_id!r} is not a member of credit group {group.name!r}")
    session.delete(row)
    session.flush()


def member_ids(session: Session, group: CreditGroup) -> list[str]:
    return list(session.scalars(
        sa.select(CreditGroupUser.user_id)
        .where(CreditGroupUser.credit_group_id == group.id)
        .order_by(CreditGroupUser.user_id)
    ))


def groups_of(session: Session, user_id: str) -> list[CreditGroup]:
    """The user's credit groups: as a direct member or through a linked Open WebUI group."""
    ids = [g.id for g in admission_terms(session, user_id, "", "").groups]
    if not ids:
        return []
    return list(session.scalars(
        sa.select(CreditGroup).where(CreditGroup.id.in_(ids)).order_by(CreditGroup.name)))


def group_allowance(session: Session, user_id: str) -> int:
    """Sum of the allowances (whole credits) of every group the user is in."""
    return admission_terms(session, user_id, "", "").group_allowance


def list_groups(session: Session) -> list[CreditGroup]:
    return list(session.scalars(sa.select(CreditGroup).order_by(CreditGroup.name)))


_groups = cast(sa.Table, CreditGroup.__table__)


def allowances_by_user(session: Session) -> dict[str, int]:
    """Each member's summed group allowances (whole credits), linked members included,
    each group counted once per user."""
    pairs = credit_group_members(group_tables(session))
    rows = session.execute(
        sa.select(pairs.c.user_id, sa.func.sum(_groups.c.max_credit))
        .select_from(pairs.join(_groups, _groups.c.id == pairs.c.credit_group_id))
        .group_by(pairs.c.user_id))
    return {user_id: int(total or 0) for user_id, total in rows}
