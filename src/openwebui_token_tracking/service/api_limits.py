"""The JSON API of budget limits under ``/api/v1``: Open WebUI group links, rate-limit
overrides and team budgets of credit groups, and spend caps. Admin-only; each request
is one transaction."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from ..storage import caps, group_limits, group_links, groups
from ..storage.openwebui_groups import list_openwebui_groups
from .api import ERRORS
from .api_models import (
    CapIn,
    CapOut,
    GroupLimitsOut,
    GroupLimitsPatch,
    LinkIn,
    LinkOut,
    OpenWebUIGroupOut,
)
from .deps import Admin, AdminWrite, State

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["limits"])
Name = Annotated[str, Query(max_length=255)]


def _cap_out(c: caps.Cap) -> CapOut:
    return CapOut(group=c.group, kind=c.kind, target=c.target, credit_limit=c.credit_limit)


def _limits_out(s: Session, name: str) -> GroupLimitsOut:
    group = groups.get_group(s, name)
    link = group_links.links(s).get(group.name)
    return GroupLimitsOut(
        name=group.name,
        openwebui_group=None if link is None else LinkOut(
            openwebui_group_id=link.openwebui_group_id, name=link.name,
            exists=not link.broken, members=link.members),
        requests_per_minute=group.requests_per_minute,
        tokens_per_minute=group.tokens_per_minute,
        total_credit_limit=group.total_credit_limit,
        caps=[_cap_out(c) for c in caps.list_caps(s, group.name)])


@router.get("/openwebui-groups", response_model=list[OpenWebUIGroupOut])
def openwebui_groups(st: State, _: Admin) -> list[OpenWebUIGroupOut]:
    """Open WebUI's groups, to link credit groups to (empty without group tables)."""
    return st.run(lambda s: [OpenWebUIGroupOut(id=g.id, name=g.name, members=g.members)
                             for g in list_openwebui_groups(s)])


@router.get("/groups/{name}/limits", response_model=GroupLimitsOut)
def get_group_limits(name: str, st: State, _: Admin) -> GroupLimitsOut:
    """A credit group's link, rate-limit overrides, team budget and spend caps."""
    return st.run(lambda s: _limits_out(s, name))


@router.patch("/groups/{name}/limits", response_model=GroupLimitsOut)
def patch_group_limits(name: str, body: GroupLimitsPatch, st: State,
                       _: AdminWrite) -> GroupLimitsOut:
    """Change the given limits; a field set to null is cleared, one left out unchanged."""
    given = {k: getattr(body, k) for k in body.model_fields_set}

    def work(s: Session) -> GroupLimitsOut:
        group_limits.set_group_limits(s, name, **given)
        return _limits_out(s, name)
    return st.run(work)


@router.put("/groups/{name}/link", response_model=GroupLimitsOut)
def link(name: str, body: LinkIn, st: State, _: AdminWrite) -> GroupLimitsOut:
    """Link the credit group to an Open WebUI group (by id or name): its members become
    the credit group's members, read at each request."""
    def work(s: Session) -> GroupLimitsOut:
        group_links.link_group(s, name, body.openwebui_group)
        return _limits_out(s, name)
    return st.run(work)


@router.delete("/groups/{name}/link", status_code=204)
def unlink(name: str, st: State, _: AdminWrite) -> Response:
    st.run(lambda s: group_links.unlink_group(s, name))
    return Response(status_code=204)


@router.get("/caps", response_model=list[CapOut])
def list_caps(st: State, _: Admin, group: Annotated[str | None, Query(max_length=255)] = None
              ) -> list[CapOut]:
    """Spend caps (credits per window per user on a model or provider)."""
    return st.run(lambda s: [_cap_out(c) for c in caps.list_caps(s, group)])


@router.put("/caps", response_model=CapOut)
def set_cap(body: CapIn, st: State, _: AdminWrite) -> CapOut:
    """Create or change a cap of the base (``group`` null) or of a credit group."""
    return st.run(lambda s: _cap_out(caps.set_cap(
        s, kind=body.kind, target=body.target, credit_limit=body.credit_limit,
        group=body.group)))


@router.delete("/caps", status_code=204)
def remove_cap(st: State, _: AdminWrite, kind: Literal["model", "provider"], target: Name,
               group: Annotated[str | None, Query(max_length=255)] = None) -> Response:
    st.run(lambda s: caps.remove_cap(s, kind=kind, target=target, group=group))
    return Response(status_code=204)
