"""Management forms of budget limits: Open WebUI group links, group rate limits and team
budgets, spend caps. Same rules as ``forms``: admin-only, CSRF-checked, one transaction,
a clear message per bad field, nothing written on error."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ..errors import InvalidInputError
from ..storage import caps, group_limits, group_links
from .deps import AdminWrite, State
from .forms import Field, OptField, act, whole

router = APIRouter(prefix="/admin/manage", include_in_schema=False)


def limit_field(value: str, name: str) -> int | None | group_limits.Unchanged:
    """Empty: unchanged; ``none``: cleared; else a whole number."""
    text = value.strip()
    if not text:
        return group_limits.UNCHANGED
    if text.lower() == "none":
        return None
    return whole(text, name)


@router.post("/groups/link")
def link(request: Request, st: State, caller: AdminWrite, name: Field,
         openwebui_group: Field) -> Response:
    def work(s: Session) -> str:
        found = group_links.link_group(s, name, openwebui_group)
        return f"credit group {name!r} linked to Open WebUI group {found.name!r}"
    return act(st, request, caller, work, "groups")


@router.post("/groups/unlink")
def unlink(request: Request, st: State, caller: AdminWrite, name: Field) -> Response:
    def work(s: Session) -> str:
        group_links.unlink_group(s, name)
        return f"credit group {name!r} unlinked"
    return act(st, request, caller, work, "groups")


@router.post("/groups/limits")
def limits(request: Request, st: State, caller: AdminWrite, name: Field,
           requests_per_minute: OptField = "", tokens_per_minute: OptField = "",
           total_credit_limit: OptField = "") -> Response:
    def work(s: Session) -> str:
        group_limits.set_group_limits(
            s, name,
            requests_per_minute=limit_field(requests_per_minute, "requests per minute"),
            tokens_per_minute=limit_field(tokens_per_minute, "tokens per minute"),
            total_credit_limit=limit_field(total_credit_limit, "team budget"))
        return f"limits of credit group {name!r} saved"
    return act(st, request, caller, work, "groups")


def _kind(value: str) -> str:
    if value not in caps.KINDS:
        raise InvalidInputError(f"a cap is on a model or a provider, got {value!r}")
    return value


@router.post("/caps/set")
def set_cap(request: Request, st: State, caller: AdminWrite, kind: Field, target: Field,
            credit_limit: Field, group: OptField = "") -> Response:
    def work(s: Session) -> str:
        found = caps.set_cap(s, kind=_kind(kind), target=target,
                             credit_limit=whole(credit_limit, "cap") or 0,
                             group=group.strip() or None)
        return f"cap on {found.kind} {found.target!r} saved"
    return act(st, request, caller, work, "caps")


@router.post("/caps/remove")
def remove_cap(request: Request, st: State, caller: AdminWrite, kind: Field, target: Field,
               group: OptField = "") -> Response:
    def work(s: Session) -> str:
        caps.remove_cap(s, kind=_kind(kind), target=target, group=group.strip() or None)
        return f"cap on {kind} {target!r} removed"
    return act(st, request, caller, work, "caps")
