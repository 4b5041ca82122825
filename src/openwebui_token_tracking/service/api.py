"""The JSON API under ``/api/v1``: balances, usage, ledger rows, and CRUD of the
groups, sponsored allowances, prices and settings the CLI manages.

Reads are open to any signed-in user for their own data (admins: anyone's); every
write is admin-only. Each request is one transaction: a failed write leaves nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from ..accounting.money import micro_to_credits
from ..errors import InvalidInputError, NotFoundError
from ..storage import groups, prices, reports, settings_store, sponsors, users
from ..storage.schema import CreditGroup, ModelPricing, SponsoredAllowance
from .api_models import (
    AllowanceIn,
    AllowanceOut,
    AllowancePatch,
    BalanceOut,
    GroupIn,
    GroupOut,
    GroupPatch,
    LedgerPage,
    LedgerRowOut,
    LimitOut,
    Me,
    MemberIn,
    PriceIn,
    PriceOut,
    Problem,
    RateOut,
    SettingIn,
    SettingOut,
    SummaryOut,
    SummaryRowOut,
)
from .deps import Admin, AdminWrite, Caller, ServiceState, State, visible_user

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": Problem} for code in (401, 403, 404, 409, 422)}
router = APIRouter(prefix="/api/v1", responses=ERRORS)
DEFAULT_DAYS = 30

Since = Annotated[datetime | None, Query(description="start (inclusive); default until-30d")]
Until = Annotated[datetime | None, Query(description="end (exclusive); default now")]
UserQuery = Annotated[str | None, Query(max_length=255, description="admins only: any user")]
By = Literal["user", "model", "provider", "group", "allowance", "day"]


def time_range(st: ServiceState, since: datetime | None,
               until: datetime | None) -> tuple[datetime, datetime]:
    """Aware UTC bounds; naive values are taken as UTC."""
    try:
        end = st.now() if until is None else until
        end = (end if end.tzinfo else end.replace(tzinfo=UTC)).astimezone(UTC)
        start = end - timedelta(days=DEFAULT_DAYS) if since is None else since
        start = (start if start.tzinfo else start.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInputError("since/until are out of the supported range") from exc
    reports.check_range(start, end)
    return start, end


# -- who am I, balances ---------------------------------------------------------------------

@router.get("/me", response_model=Me, tags=["account"])
def me(caller: Caller) -> Me:
    return Me(user_id=caller.user_id, name=caller.name, role=caller.role)


def _balance(st: ServiceState, user_id: str, allowance: str | None) -> BalanceOut:
    report = st.accountant.balance(user_id, allowance_name=allowance)
    return BalanceOut(
        user_id=user_id, allowance=report.allowance_name, remaining=report.remaining,
        reset_at=report.reset_at,
        limits=[LimitOut(scope=s.scope, limit=s.limit, spent=s.spent, reserved=s.reserved,
                         remaining=s.remaining, window_start=s.window_start,
                         reset_at=s.reset_at, target=s.target) for s in report.limits],
        rate=RateOut.model_validate(report.rate, from_attributes=True) if report.rate
        else None)


AllowanceQuery = Annotated[str | None, Query(max_length=255,
                                             description="a sponsored allowance's name")]


@router.get("/balance", response_model=BalanceOut, tags=["account"])
def own_balance(st: State, caller: Caller, allowance: AllowanceQuery = None) -> BalanceOut:
    """The caller's remaining credits in the current window (or under an allowance)."""
    return _balance(st, caller.user_id, allowance)


@router.get("/users/{user_id}/balance", response_model=BalanceOut, tags=["account"])
def user_balance(user_id: str, st: State, caller: Caller,
                 allowance: AllowanceQuery = None) -> BalanceOut:
    visible_user(caller, user_id)
    if caller.user_id != user_id:
        st.run(lambda s: users.require_user(s, user_id))
    return _balance(st, user_id, allowance)


# -- usage ----------------------------------------------------------------------------------

@router.get("/usage/summary", response_model=SummaryOut, tags=["usage"])
def usage_summary(st: State, caller: Caller, by: By = "model", since: Since = None,
                  until: Until = None, user_id: UserQuery = None) -> SummaryOut:
    """Requests, tokens and credits in a range summed by one dimension (days in UTC)."""
    who = visible_user(caller, user_id)
    start, end = time_range(st, since, until)

    def work(s: Session) -> SummaryOut:
        rows = reports.usage_summary(s, since=start, until=end, by=by, user_id=who)
        total = reports.usage_total(s, since=start, until=end, user_id=who)
        return SummaryOut(since=start, until=end, by=by, user_id=who,
                          total=SummaryRowOut.of(total),
                          rows=[SummaryRowOut.of(r) for r in rows])
    return st.run(work)


@router.get("/usage/ledger", response_model=LedgerPage, tags=["usage"])
def usage_ledger(st: State, caller: Caller, since: Since = None, until: Until = None,
                 user_id: UserQuery = None,
                 offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> LedgerPage:
    """Ledger rows in a range, oldest first, one page at a time."""
    who = visible_user(caller, user_id)
    start, end = time_range(st, since, until)

    def work(s: Session) -> LedgerPage:
        total = reports.count_ledger_rows(s, since=start, until=end, user_id=who)
        rows = reports.ledger_rows(s, since=start, until=end, user_id=who, offset=offset,
                                   limit=limit)
        nxt = offset + len(rows) if offset + len(rows) < total else None
        return LedgerPage(since=start, until=end, user_id=who, offset=offset, limit=limit,
                          total=total, next_offset=nxt, rows=[LedgerRowOut.of(r) for r in rows])
    return st.run(work)


# -- credit groups --------------------------------------------------------------------------

def _group_out(s: Session, g: CreditGroup) -> GroupOut:
    return GroupOut(id=g.id, name=g.name, max_credit=g.max_credit, description=g.description,
                    members=groups.member_ids(s, g), openwebui_group_id=g.openwebui_group_id,
                    requests_per_minute=g.requests_per_minute,
                    tokens_per_minute=g.tokens_per_minute,
                    total_credit_limit=g.total_credit_limit)


@router.get("/groups", response_model=list[GroupOut], tags=["groups"])
def list_groups(st: State, _: Admin) -> list[GroupOut]:
    return st.run(lambda s: [_group_out(s, g) for g in groups.list_groups(s)])


@router.post("/groups", response_model=GroupOut, status_code=201, tags=["groups"])
def create_group(body: GroupIn, st: State, _: AdminWrite) -> GroupOut:
    return st.run(lambda s: _group_out(s, groups.create_group(
        s, body.name, body.max_credit, body.description)))


@router.get("/groups/{name}", response_model=GroupOut, tags=["groups"])
def get_group(name: str, st: State, _: Admin) -> GroupOut:
    return st.run(lambda s: _group_out(s, groups.get_group(s, name)))


@router.patch("/groups/{name}", response_model=GroupOut, tags=["groups"])
def update_group(name: str, body: GroupPatch, st: State, _: AdminWrite) -> GroupOut:
    return st.run(lambda s: _group_out(s, groups.update_group(
        s, name, max_credit=body.max_credit, description=body.description,
        new_name=body.new_name)))


@router.delete("/groups/{name}", status_code=204, tags=["groups"])
def delete_group(name: str, st: State, _: AdminWrite, force: bool = False) -> Response:
    st.run(lambda s: groups.delete_group(s, name, force=force))
    return Response(status_code=204)


@router.post("/groups/{name}/members", response_model=GroupOut, status_code=201,
             tags=["groups"])
def add_member(name: str, body: MemberIn, st: State, _: AdminWrite) -> GroupOut:
    def work(s: Session) -> GroupOut:
        groups.add_member(s, name, body.user_id)
        return _group_out(s, groups.get_group(s, name))
    return st.run(work)


@router.delete("/groups/{name}/members/{user_id}", response_model=GroupOut, tags=["groups"])
def remove_member(name: str, user_id: str, st: State, _: AdminWrite) -> GroupOut:
    def work(s: Session) -> GroupOut:
        groups.remove_member(s, name, user_id)
        return _group_out(s, groups.get_group(s, name))
    return st.run(work)


# -- sponsored allowances -------------------------------------------------------------------

def _allowance_out(a: SponsoredAllowance, spent: dict[str, int]) -> AllowanceOut:
    used = spent.get(str(a.id), 0)
    return AllowanceOut(
        id=a.id, name=a.name, sponsor_id=a.sponsor_id, models=sponsors.covered_models(a),
        total_credit_limit=a.total_credit_limit, daily_credit_limit=a.daily_credit_limit,
        creation_date=a.creation_date, expires_at=a.expires_at,
        spent=micro_to_credits(used),
        remaining=micro_to_credits(a.total_credit_limit * 1_000_000 - used))


@router.get("/allowances", response_model=list[AllowanceOut], tags=["allowances"])
def list_allowances(st: State, _: Caller) -> list[AllowanceOut]:
    """Every sponsored allowance (any signed-in user may see what they can use)."""
    def work(s: Session) -> list[AllowanceOut]:
        spent = reports.spent_by_allowance(s)
        return [_allowance_out(a, spent) for a in sponsors.list_allowances(s)]
    return st.run(work)


@router.post("/allowances", response_model=AllowanceOut, status_code=201,
             tags=["allowances"])
def create_allowance(body: AllowanceIn, st: State, _: AdminWrite) -> AllowanceOut:
    now = st.now()
    return st.run(lambda s: _allowance_out(sponsors.create_allowance(
        s, name=body.name, sponsor_id=body.sponsor_id, models=body.models,
        total_credit_limit=body.total_credit_limit,
        daily_credit_limit=body.daily_credit_limit, now=now, expires_at=body.expires_at), {}))


@router.get("/allowances/{name}", response_model=AllowanceOut, tags=["allowances"])
def get_allowance(name: str, st: State, _: Caller) -> AllowanceOut:
    return st.run(lambda s: _allowance_out(sponsors.get_allowance(s, name=name),
                                           reports.spent_by_allowance(s)))


@router.patch("/allowances/{name}", response_model=AllowanceOut, tags=["allowances"])
def update_allowance(name: str, body: AllowancePatch, st: State,
                     _: AdminWrite) -> AllowanceOut:
    changes: dict[str, object] = {}
    if body.daily_credit_limit is not None or body.clear_daily_credit_limit:
        changes["daily_credit_limit"] = body.daily_credit_limit
    if body.expires_at is not None or body.clear_expires_at:
        changes["expires_at"] = body.expires_at

    def work(s: Session) -> AllowanceOut:
        a = sponsors.update_allowance(
            s, sponsors.get_allowance(s, name=name), new_name=body.new_name,
            sponsor_id=body.sponsor_id, models=body.models,
            total_credit_limit=body.total_credit_limit, **changes)  # type: ignore[arg-type]
        return _allowance_out(a, reports.spent_by_allowance(s))
    return st.run(work)


@router.delete("/allowances/{name}", status_code=204, tags=["allowances"])
def delete_allowance(name: str, st: State, _: AdminWrite) -> Response:
    st.run(lambda s: sponsors.delete_allowance(s, sponsors.get_allowance(s, name=name)))
    return Response(status_code=204)


# -- prices ---------------------------------------------------------------------------------

def _price_out(p: ModelPricing) -> PriceOut:
    return PriceOut(
        provider=p.provider, model_id=p.id, name=p.name, source=p.source,
        updated_at=p.updated_at, matched_model_id=p.matched_model_id,
        **prices.PriceInput.from_row(p).as_columns())  # type: ignore[arg-type]


@router.get("/prices", response_model=list[PriceOut], tags=["prices"])
def list_prices(st: State, _: Caller) -> list[PriceOut]:
    return st.run(lambda s: [_price_out(p) for p in prices.list_prices(s)])


@router.get("/prices/{provider}/{model_id:path}", response_model=PriceOut, tags=["prices"])
def get_price(provider: str, model_id: str, st: State, _: Caller) -> PriceOut:
    def work(s: Session) -> PriceOut:
        found = prices.list_prices(s, provider=provider, model_id=model_id)
        if not found:
            raise NotFoundError(f"no price for model {model_id!r} of provider {provider!r}")
        return _price_out(found[0])
    return st.run(work)


@router.put("/prices/{provider}/{model_id:path}", response_model=PriceOut, tags=["prices"])
def set_price(provider: str, model_id: str, body: PriceIn, st: State,
              _: AdminWrite) -> PriceOut:
    """Create or change a price from ``effective_from`` on; past charges keep theirs."""
    now = st.now()
    rates = body.model_dump(exclude={"name", "effective_from"})

    def work(s: Session) -> PriceOut:
        row = prices.set_price(s, provider=provider, model_id=model_id, name=body.name,
                               price=prices.PriceInput(**rates), now=now,
                               effective_from=body.effective_from)
        return _price_out(row)
    return st.run(work)


@router.delete("/prices/{provider}/{model_id:path}", status_code=204, tags=["prices"])
def delete_price(provider: str, model_id: str, st: State, _: AdminWrite) -> Response:
    st.run(lambda s: prices.delete_price(s, provider=provider, model_id=model_id))
    return Response(status_code=204)


# -- settings -------------------------------------------------------------------------------

def _settings(s: Session) -> list[SettingOut]:
    stored = settings_store.read_all(s)
    return [SettingOut(key=k, value=settings_store.shown_value(k, stored.get(k, spec.default)),
                       default=spec.default,
                       description=spec.description)
            for k, spec in sorted(settings_store.SPECS.items())]


@router.get("/settings", response_model=list[SettingOut], tags=["settings"])
def list_settings(st: State, _: Admin) -> list[SettingOut]:
    return st.run(_settings)


@router.put("/settings/{key}", response_model=SettingOut, tags=["settings"])
def put_setting(key: str, body: SettingIn, st: State, _: AdminWrite) -> SettingOut:
    def work(s: Session) -> SettingOut:
        if key not in settings_store.SPECS:
            raise NotFoundError(f"unknown setting {key!r}; known: "
                                f"{', '.join(sorted(settings_store.SPECS))}")
        settings_store.set_value(s, key, body.value)
        return next(o for o in _settings(s) if o.key == key)
    return st.run(work)
