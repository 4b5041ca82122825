"""HTML pages: login, admin dashboard, personal page, CSV downloads, metrics, health."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ..errors import DatabaseError, InvalidInputError, NotFoundError
from ..storage import users
from ..storage.settings_store import budget_settings
from . import dashboard, metrics
from .auth import AuthError, Principal
from .deps import COOKIE, Admin, Caller, ServiceState, State, check_origin, visible_user
from .keys_api import keys_of

router = APIRouter(include_in_schema=False)
MAX_DAYS = 366
SESSION_DAYS = 7
DayParam = Annotated[str | None, Query(max_length=10)]


def render(st: ServiceState, request: Request, name: str, status_code: int = 200,
           principal: Principal | None = None, **context: Any) -> HTMLResponse:
    token = request.cookies.get(COOKIE, "")
    context.update(principal=principal, csrf=st.csrf_for(token) if token else "")
    return st.templates.TemplateResponse(request, name, context, status_code=status_code)


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(f"{name} must be a date like 2026-11-28, got {text!r}") from exc


def day_range(st: ServiceState, since: str | None, until: str | None) -> dashboard.Range:
    """Whole days in the budget time zone; default: the last 30 days up to today."""
    tz: ZoneInfo = st.run(lambda s: budget_settings(s).timezone)
    today = st.now().astimezone(tz).date()
    last = _day(until, "until") or today
    first = _day(since, "since") or last - timedelta(days=29)
    if first > last:
        raise InvalidInputError(f"since {first} is after until {last}")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInputError(f"choose at most {MAX_DAYS} days")
    return dashboard.Range(first, last, tz)


def csv_response(table: dashboard.Table, filename: str) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/healthz")
def healthz(st: State) -> JSONResponse:
    try:
        st.run(lambda s: s.execute(sa.text("SELECT 1")))
    except DatabaseError as exc:
        return JSONResponse({"status": "error", "database": str(exc)}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics")
def prometheus(st: State, _: Admin) -> Response:
    now = st.now()
    return Response(st.run(lambda s: metrics.render(s, now)), media_type=metrics.CONTENT_TYPE)


@router.get("/")
def home(caller: Caller) -> RedirectResponse:
    return RedirectResponse("/admin" if caller.is_admin else "/me", status_code=303)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, st: State,
               next: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
    return render(st, request, "login.html", next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, st: State, token: Annotated[str, Form(max_length=4096)],
          next: Annotated[str, Form(max_length=500)] = "/") -> Response:
    check_origin(request)
    try:
        principal = st.auth.authenticate(token, "cookie", st.now())
    except AuthError as exc:
        return render(st, request, "login.html", status_code=exc.status_code,
                      next=_safe_next(next), error=str(exc))
    target = _safe_next(next)
    if target == "/" or (target.startswith("/admin") and not principal.is_admin):
        target = "/admin" if principal.is_admin else "/me"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token.strip(), max_age=SESSION_DAYS * 86400, httponly=True,
                        samesite="strict", secure=st.secure_cookies, path="/")
    return response


@router.post("/logout")
def logout(request: Request) -> RedirectResponse:
    check_origin(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/admin", response_class=HTMLResponse)
def admin_dashboard(request: Request, st: State, caller: Admin, since: DayParam = None,
                    until: DayParam = None) -> HTMLResponse:
    rng = day_range(st, since, until)
    now = st.now()
    view = st.run(lambda s: dashboard.admin_view(s, rng, now))
    return render(st, request, "admin.html", principal=caller, view=view, now=now)


@router.get("/admin/{table}.csv")
def admin_csv(table: str, st: State, _: Admin, since: DayParam = None,
              until: DayParam = None) -> Response:
    rng = day_range(st, since, until)
    now = st.now()
    view = st.run(lambda s: dashboard.admin_view(s, rng, now))
    if table not in view.tables:
        raise NotFoundError(f"no table {table!r}; choose one of {', '.join(view.tables)}")
    return csv_response(view.tables[table], f"{table}_{rng.first}_{rng.last}.csv")


def _personal(st: ServiceState, caller: Principal, user_id: str | None,
              since: str | None, until: str | None) -> dashboard.PersonalView:
    who = visible_user(caller, user_id) or caller.user_id
    rng = day_range(st, since, until)

    def name_of(s: Session) -> str:
        user = users.require_user(s, who) if who != caller.user_id else None
        return str(user["name"]) if user else caller.name
    name = st.run(name_of)
    return dashboard.personal_view(st.accountant, who, name, rng, st.now())


UserParam = Annotated[str | None, Query(max_length=255)]


@router.get("/me", response_class=HTMLResponse)
def personal_page(request: Request, st: State, caller: Caller, user_id: UserParam = None,
                  since: DayParam = None, until: DayParam = None) -> HTMLResponse:
    view = _personal(st, caller, user_id, since, until)
    return render(st, request, "me.html", principal=caller, view=view,
                  keys=keys_of(st, view.user_id))


@router.get("/me/{table}.csv")
def personal_csv(table: str, st: State, caller: Caller, user_id: UserParam = None,
                 since: DayParam = None, until: DayParam = None) -> Response:
    view = _personal(st, caller, user_id, since, until)
    if table not in view.tables:
        raise NotFoundError(f"no table {table!r}; choose one of {', '.join(view.tables)}")
    return csv_response(view.tables[table], f"{view.user_id}_{table}.csv")
