"""Management forms: the CLI's actions on groups, members, allowances, settings, prices.

Each POST is admin-only and CSRF-checked (``AdminWrite``), parses its fields with a
clear message per bad field, and calls the same storage functions as the CLI and the
API inside one transaction. Success redirects (303) back to the page with a notice;
an error re-renders the page with the message and a 4xx status, nothing written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ..errors import InvalidInputError, TokenTrackingError
from ..storage import caps, group_links, groups, prices, reports, settings_store, sponsors
from ..storage.openwebui_groups import list_openwebui_groups
from ..storage.settings_store import budget_settings
from .deps import Admin, AdminWrite, ServiceState, State, status_of
from .pages import render

router = APIRouter(prefix="/admin/manage", include_in_schema=False)
Field = Annotated[str, Form(max_length=255)]
OptField = Annotated[str, Form(max_length=255)]


def whole(value: str, name: str, *, optional: bool = False) -> int | None:
    """A whole number of credits/tokens from a form field ('' is None when optional)."""
    text = value.strip()
    if not text and optional:
        return None
    if not text.isdigit() or len(text) > 13:
        raise InvalidInputError(f"{name} must be a whole number from 0 to 10^12, "
                                f"got {value!r}")
    return int(text)


def _manage_context(s: Session) -> dict[str, object]:
    all_groups = groups.list_groups(s)
    spent = reports.spent_by_allowance(s)
    return {
        "groups": [(g, groups.member_ids(s, g)) for g in all_groups],
        "allowances": [(a, sponsors.covered_models(a), spent.get(str(a.id), 0))
                       for a in sponsors.list_allowances(s)],
        "prices": prices.list_prices(s),
        "settings": [(k, spec, v) for k, spec, v in _settings(s)],
        "tz": budget_settings(s).timezone,
        "links": group_links.links(s),
        "caps": caps.list_caps(s),
        "openwebui_groups": list_openwebui_groups(s),
    }


def _settings(s: Session) -> list[tuple[str, settings_store.SettingSpec, str]]:
    stored = settings_store.read_all(s)
    return [(k, spec, stored.get(k, spec.default))
            for k, spec in sorted(settings_store.SPECS.items())]


def manage_page(st: ServiceState, request: Request, caller: object, *, error: str | None = None,
                notice: str | None = None, status_code: int = 200) -> HTMLResponse:
    context = st.run(_manage_context)
    return render(st, request, "manage.html", status_code=status_code,
                  principal=caller, error=error, notice=notice, **context)  # type: ignore[arg-type]


@router.get("", response_class=HTMLResponse)
def manage(request: Request, st: State, caller: Admin, ok: str | None = None) -> HTMLResponse:
    return manage_page(st, request, caller, notice=ok[:300] if ok else None)


def act(st: ServiceState, request: Request, caller: object, work: Callable[[Session], str],
        anchor: str) -> Response:
    """Run one management action in one transaction; show its error or redirect."""
    try:
        notice = st.run(work)
    except TokenTrackingError as exc:
        return manage_page(st, request, caller, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"/admin/manage?ok={quote(notice)}#{anchor}", status_code=303)


@router.post("/groups/create")
def create_group(request: Request, st: State, caller: AdminWrite, name: Field,
                 max_credit: Field, description: OptField = "") -> Response:
    def work(s: Session) -> str:
        g = groups.create_group(s, name, whole(max_credit, "allowance") or 0,
                                description.strip() or None)
        return f"credit group {g.name!r} created"
    return act(st, request, caller, work, "groups")


@router.post("/groups/update")
def update_group(request: Request, st: State, caller: AdminWrite, name: Field,
                 max_credit: OptField = "", description: OptField = "",
                 new_name: OptField = "") -> Response:
    def work(s: Session) -> str:
        g = groups.update_group(s, name, max_credit=whole(max_credit, "allowance",
                                                           optional=True),
                                description=description.strip() or None,
                                new_name=new_name.strip() or None)
        return f"credit group {g.name!r} updated"
    return act(st, request, caller, work, "groups")


@router.post("/groups/delete")
def delete_group(request: Request, st: State, caller: AdminWrite, name: Field,
                 force: OptField = "") -> Response:
    def work(s: Session) -> str:
        groups.delete_group(s, name, force=force == "on")
        return f"credit group {name!r} deleted"
    return act(st, request, caller, work, "groups")


@router.post("/members/add")
def add_member(request: Request, st: State, caller: AdminWrite, group: Field,
               user_id: Field) -> Response:
    def work(s: Session) -> str:
        groups.add_member(s, group, user_id.strip())
        return f"{user_id.strip()} added to {group!r}"
    return act(st, request, caller, work, "groups")


@router.post("/members/remove")
def remove_member(request: Request, st: State, caller: AdminWrite, group: Field,
                  user_id: Field) -> Response:
    def work(s: Session) -> str:
        groups.remove_member(s, group, user_id.strip())
        return f"{user_id.strip()} removed from {group!r}"
    return act(st, request, caller, work, "groups")


def _expiry(text: str, s: Session) -> datetime | None:
    if not text.strip():
        return None
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError as exc:
        raise InvalidInputError(f"expiry must be a date like 2026-12-31, got {text!r}") from exc
    return datetime.combine(day, time.max, budget_settings(s).timezone)


@router.post("/allowances/create")
def create_allowance(request: Request, st: State, caller: AdminWrite, name: Field,
                     models: Annotated[str, Form(max_length=4000)], total_credit_limit: Field,
                     daily_credit_limit: OptField = "", sponsor_id: OptField = "",
                     expires: OptField = "") -> Response:
    now = st.now()

    def work(s: Session) -> str:
        a = sponsors.create_allowance(
            s, name=name, sponsor_id=sponsor_id.strip() or None,
            models=[m.strip() for m in models.replace("\n", ",").split(",")],
            total_credit_limit=whole(total_credit_limit, "total credit limit") or 0,
            daily_credit_limit=whole(daily_credit_limit, "daily credit limit", optional=True),
            now=now, expires_at=_expiry(expires, s))
        return f"sponsored allowance {a.name!r} created"
    return act(st, request, caller, work, "allowances")


@router.post("/allowances/update")
def update_allowance(request: Request, st: State, caller: AdminWrite, name: Field,
                     models: Annotated[str, Form(max_length=4000)] = "",
                     total_credit_limit: OptField = "", daily_credit_limit: OptField = "",
                     clear_daily_limit: OptField = "", expires: OptField = "",
                     clear_expiry: OptField = "") -> Response:
    """Change the given fields of an allowance; empty fields stay as they are."""
    def work(s: Session) -> str:
        allowance = sponsors.get_allowance(s, name=name)
        changes: dict[str, object] = {}
        if clear_daily_limit:
            changes["daily_credit_limit"] = None
        elif daily_credit_limit.strip():
            changes["daily_credit_limit"] = whole(daily_credit_limit, "daily credit limit")
        if clear_expiry:
            changes["expires_at"] = None
        elif expires.strip():
            changes["expires_at"] = _expiry(expires, s)
        listed = [m.strip() for m in models.replace("\n", ",").split(",") if m.strip()]
        sponsors.update_allowance(
            s, allowance, models=listed or None,
            total_credit_limit=whole(total_credit_limit, "total credit limit", optional=True),
            **changes)  # type: ignore[arg-type]
        return f"sponsored allowance {allowance.name!r} updated"
    return act(st, request, caller, work, "allowances")


@router.post("/allowances/delete")
def delete_allowance(request: Request, st: State, caller: AdminWrite, name: Field) -> Response:
    def work(s: Session) -> str:
        sponsors.delete_allowance(s, sponsors.get_allowance(s, name=name))
        return f"sponsored allowance {name!r} deleted (its usage stays in the ledger)"
    return act(st, request, caller, work, "allowances")


@router.post("/settings")
def set_setting(request: Request, st: State, caller: AdminWrite, key: Field,
                value: OptField = "") -> Response:
    def work(s: Session) -> str:
        settings_store.set_value(s, key, value)
        return f"setting {key} saved"
    return act(st, request, caller, work, "settings")


@router.post("/prices/set")
def set_price(request: Request, st: State, caller: AdminWrite, provider: Field,
              model_id: Field, input_cost_credits: Field, output_cost_credits: Field,
              per_input_tokens: OptField = "1000000", per_output_tokens: OptField = "1000000",
              name: OptField = "") -> Response:
    now = st.now()

    def work(s: Session) -> str:
        price = prices.PriceInput(
            input_cost_credits=whole(input_cost_credits, "input cost") or 0,
            per_input_tokens=whole(per_input_tokens, "per input tokens") or 0,
            output_cost_credits=whole(output_cost_credits, "output cost") or 0,
            per_output_tokens=whole(per_output_tokens, "per output tokens") or 0)
        row = prices.set_price(s, provider=provider.strip(), model_id=model_id.strip(),
                               name=name.strip() or None, price=price, now=now)
        return f"price of {row.provider}/{row.id} saved"
    return act(st, request, caller, work, "prices")


@router.post("/prices/delete")
def delete_price(request: Request, st: State, caller: AdminWrite, provider: Field,
                 model_id: Field) -> Response:
    def work(s: Session) -> str:
        prices.delete_price(s, provider=provider, model_id=model_id)
        return f"price of {provider}/{model_id} deleted"
    return act(st, request, caller, work, "prices")
