"""Open WebUI's groups, read-only: which tables exist, and membership statements.

A credit group linked to an Open WebUI group (``storage.group_links``) counts that
group's members as its own, read at admission time (no copy to keep in sync). As in
Open WebUI 0.12, a member of a sub-group is also a member of every ancestor group, so
linking a parent group covers its sub-groups' members. A link to a deleted Open WebUI
group grants nothing.

Databases of Open WebUI before 0.6 (no ``group_member`` table) and our own unit tests
have no group tables: then links cannot be made and the membership queries leave the
Open WebUI part out. Which tables exist is probed once per engine.
"""

from __future__ import annotations

import enum
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..errors import InvalidInputError, NotFoundError
from .openwebui_tables import group_member_table, group_table
from .schema import CreditGroup, CreditGroupUser


class GroupTables(enum.Enum):
    """Which of Open WebUI's group tables the database has."""

    NONE = "none"
    FLAT = "flat"
    """``group`` and ``group_member`` without sub-groups (Open WebUI 0.6 to 0.11)."""
    NESTED = "nested"
    """Sub-groups through ``group.parent_group_id`` (Open WebUI 0.12)."""


RECHECK_MISSING_S = 60.0
"""A database found without group tables is probed again after this many seconds
(Open WebUI may create them after our process started)."""

_probed: weakref.WeakKeyDictionary[Engine, tuple[GroupTables, float]] = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


def probe_group_tables(session: Session) -> GroupTables:
    """Inspect the database (uncached)."""
    inspector = sa.inspect(session.connection())
    if not (inspector.has_table("group") and inspector.has_table("group_member")):
        return GroupTables.NONE
    columns = {c["name"] for c in inspector.get_columns("group")}
    return GroupTables.NESTED if "parent_group_id" in columns else GroupTables.FLAT


def known_group_tables(engine: Engine) -> GroupTables | None:
    """The cached probe of ``engine``'s group tables; None when a probe is due (reading
    the cache needs no database, for callers that must not block)."""
    found = _probed.get(engine)
    if found is not None and (found[0] is not GroupTables.NONE
                              or time.monotonic() - found[1] < RECHECK_MISSING_S):
        return found[0]
    return None


def group_tables(session: Session) -> GroupTables:
    """``probe_group_tables``, cached per engine (a missing table is re-probed later)."""
    key = session.get_bind().engine
    known = known_group_tables(key)
    if known is not None:
        return known
    now = time.monotonic()
    kind = probe_group_tables(session)
    with _lock:
        _probed[key] = (kind, now)
    return kind


def forget_probes() -> None:
    """Drop the cached probes (tests that create Open WebUI's tables mid-process)."""
    with _lock:
        _probed.clear()


# -- membership statements ----------------------------------------------------------------

_g, _gm = group_table, group_member_table


def user_openwebui_groups(kind: GroupTables, user_param: str = "user_id") -> sa.CTE:
    """The existing Open WebUI groups of the user bound to ``user_param``, with their
    ancestors when groups nest (a recursive CTE; UNION stops on cycles)."""
    direct = (sa.select(_gm.c.group_id.label("gid"))
              .select_from(_gm.join(_g, _g.c.id == _gm.c.group_id))
              .where(_gm.c.user_id == sa.bindparam(user_param)))
    if kind is not GroupTables.NESTED:
        return direct.cte("tt_owui_groups")
    chain = direct.cte("tt_owui_groups", recursive=True)
    child, parent = _g.alias("tt_child"), _g.alias("tt_parent")
    return chain.union(
        sa.select(parent.c.id)
        .select_from(child.join(chain, child.c.id == chain.c.gid)
                     .join(parent, parent.c.id == child.c.parent_group_id)))


def openwebui_members(kind: GroupTables, group_id: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """User ids of the existing Open WebUI group ``group_id`` and of its sub-groups."""
    if kind is GroupTables.NESTED:
        tree = (sa.select(_g.c.id.label("gid")).where(_g.c.id == group_id)
                .cte("tt_owui_tree", recursive=True))
        child = _g.alias("tt_sub")
        tree = tree.union(sa.select(child.c.id)
                          .select_from(child.join(tree, child.c.parent_group_id == tree.c.gid)))
        return sa.select(_gm.c.user_id).where(_gm.c.group_id.in_(sa.select(tree.c.gid)))
    return (sa.select(_gm.c.user_id)
            .select_from(_gm.join(_g, _g.c.id == _gm.c.group_id))
            .where(_gm.c.group_id == group_id))


def credit_group_members(kind: GroupTables) -> sa.Subquery:
    """Every (``user_id``, ``credit_group_id``) membership, each once: direct members and
    members of each linked Open WebUI group or of its sub-groups."""
    cg, cgu = CreditGroup.__table__, CreditGroupUser.__table__
    direct = sa.select(cgu.c.user_id, cgu.c.credit_group_id)
    if kind is GroupTables.NONE:
        return direct.subquery("tt_memberships")
    tree = (sa.select(cg.c.id.label("cgid"), _g.c.id.label("gid"))
            .select_from(cg.join(_g, _g.c.id == cg.c.openwebui_group_id))
            .cte("tt_link_tree", recursive=kind is GroupTables.NESTED))
    if kind is GroupTables.NESTED:
        child = _g.alias("tt_link_sub")
        tree = tree.union(sa.select(tree.c.cgid, child.c.id).select_from(
            child.join(tree, child.c.parent_group_id == tree.c.gid)))
    linked = (sa.select(_gm.c.user_id, tree.c.cgid)
              .select_from(_gm.join(tree, tree.c.gid == _gm.c.group_id)))
    return sa.union(direct, linked).subquery("tt_memberships")


# -- reading Open WebUI's groups ----------------------------------------------------------

@dataclass(frozen=True)
class OpenWebUIGroup:
    id: str
    name: str
    members: int
    """Direct members (sub-groups' members are counted in their own group)."""


def require_group_tables(session: Session) -> GroupTables:
    kind = probe_group_tables(session)
    if kind is GroupTables.NONE:
        raise InvalidInputError(
            "this database has no Open WebUI group tables (group, group_member); "
            "linking needs Open WebUI 0.6 or later")
    return kind


def list_openwebui_groups(session: Session) -> list[OpenWebUIGroup]:
    """Every Open WebUI group with its member count; empty without group tables."""
    if group_tables(session) is GroupTables.NONE:
        return []
    count = (sa.select(sa.func.count()).where(_gm.c.group_id == _g.c.id)
             .correlate(_g).scalar_subquery())
    rows = session.execute(sa.select(_g.c.id, _g.c.name, count).order_by(_g.c.name, _g.c.id))
    return [OpenWebUIGroup(i, n or i, int(c or 0)) for i, n, c in rows]


def find_openwebui_group(session: Session, ref: str) -> OpenWebUIGroup:
    """An Open WebUI group by id, else by name (case-insensitive, must be unambiguous)."""
    require_group_tables(session)
    ref = ref.strip()
    if not ref:
        raise InvalidInputError("give an Open WebUI group id or name")
    groups = list_openwebui_groups(session)
    by_id = [g for g in groups if g.id == ref]
    if by_id:
        return by_id[0]
    by_name = [g for g in groups if g.name.casefold() == ref.casefold()]
    if len(by_name) > 1:
        raise InvalidInputError(
            f"{len(by_name)} Open WebUI groups are named {ref!r}; give the id: "
            + ", ".join(g.id for g in by_name))
    if not by_name:
        raise NotFoundError(f"no Open WebUI group with id or name {ref!r}")
    return by_name[0]
