"""Credit groups linked to Open WebUI groups: link, unlink, and what the links show."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import NotFoundError
from .groups import get_group
from .openwebui_groups import (
    GroupTables,
    OpenWebUIGroup,
    find_openwebui_group,
    group_tables,
    list_openwebui_groups,
    openwebui_members,
)
from .schema import CreditGroup


@dataclass(frozen=True)
class Link:
    """A credit group's link as the dashboard shows it."""

    openwebui_group_id: str
    name: str | None
    """The Open WebUI group's name; None when it no longer exists (grants nothing)."""
    members: int
    """Its members, sub-groups' members included."""

    @property
    def broken(self) -> bool:
        return self.name is None


def links(session: Session) -> dict[str, Link]:
    """Each linked credit group's link, by credit group name."""
    linked = list(session.execute(
        sa.select(CreditGroup.name, CreditGroup.openwebui_group_id)
        .where(CreditGroup.openwebui_group_id.is_not(None))))
    if not linked:
        return {}
    existing = {g.id: g for g in list_openwebui_groups(session)}
    kind = group_tables(session)
    out = {}
    for name, gid in linked:
        found = existing.get(str(gid))
        members = 0 if found is None else session.scalar(sa.select(sa.func.count()).select_from(
            openwebui_members(kind, sa.literal(found.id)).distinct().subquery())) or 0
        out[name] = Link(str(gid), found.name if found else None, int(members))
    return out


def linked_member_ids(session: Session, group: CreditGroup) -> list[str]:
    """Members a credit group has through its Open WebUI link (sub-groups included)."""
    kind = group_tables(session)
    if group.openwebui_group_id is None or kind is GroupTables.NONE:
        return []
    query = openwebui_members(kind, sa.literal(group.openwebui_group_id))
    return sorted(set(session.scalars(query)))


def link_group(session: Session, name: str, openwebui_group: str) -> OpenWebUIGroup:
    """Link credit group ``name`` to an Open WebUI group (by id or name); replaces a link."""
    group = get_group(session, name)
    found = find_openwebui_group(session, openwebui_group)
    group.openwebui_group_id = found.id
    session.flush()
    return found


def unlink_group(session: Session, name: str) -> None:
    group = get_group(session, name)
    if group.openwebui_group_id is None:
        raise NotFoundError(f"credit group {group.name!r} is not linked to an Open WebUI group")
    group.openwebui_group_id = None
    session.flush()
