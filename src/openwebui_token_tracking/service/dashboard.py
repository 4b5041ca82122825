"""What the admin dashboard and the personal page show, as tables and charts.

A ``Table`` is what a page renders and what its CSV download writes, so the two can
never disagree. Days are calendar days in the budget time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy.orm import Session

from ..accountant import Accountant, LimitState, RateReport
from ..accounting.money import MICRO, micro_to_credits
from ..storage import alerts, group_links, prices, refusals, reports, sponsors
from ..storage.scopes import CAP_SCOPES, GROUP_TOTAL
from ..storage.settings_store import budget_settings
from . import charts, queries

TOP = 10
MAX_ALERTS = 200
RATE_DAYS = 7
"""Days of recent spend that set an allowance's current burn rate."""


@dataclass
class Table:
    """Rows of plain values (str, int, Decimal); ``numeric`` columns sort as numbers."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)


@dataclass
class Range:
    """A range of whole local days, ``[since, until)`` as aware instants."""

    first: date
    last: date
    tz: ZoneInfo

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, datetime.min.time(), self.tz)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), datetime.min.time(), self.tz)


def credits(micro: int) -> Decimal:
    return micro_to_credits(micro).quantize(Decimal("0.01"))


def day_chart(session: Session, rng: Range, user_id: str | None,
              title: str) -> tuple[Markup, Table]:
    hours = queries.hourly_spend(session, rng.since, rng.until, user_id=user_id)
    days = queries.days_between(rng.since, rng.until, rng.tz)
    by_model = queries.per_day_by_model(hours, days, rng.tz)
    labels = [d.isoformat() for d in days]
    series = [charts.Series(k, [micro_to_credits(v) for v in vals])
              for k, vals in by_model.items()]
    table = Table("daily", "Credits per day by model", ["Day", *by_model, "Total"],
                  numeric=set(range(1, len(by_model) + 2)))
    for i, day in enumerate(labels):
        vals = [by_model[k][i] for k in by_model]
        table.rows.append([day, *(credits(v) for v in vals), credits(sum(vals))])
    return charts.stacked_bars(labels, series, title=title), table


def top_users(session: Session, rng: Range) -> Table:
    rows = reports.usage_summary(session, since=rng.since, until=rng.until, by="user")
    return Table("users", "Top users", ["User", "Name", "Requests", "Tokens", "Credits"],
                 [[r.key, r.detail or "", r.requests, r.total_tokens, credits(r.charged_micro)]
                  for r in rows], {2, 3, 4})


def top_groups(session: Session, rng: Range) -> Table:
    rows = reports.usage_summary(session, since=rng.since, until=rng.until, by="group")
    return Table("groups", "Top credit groups (members' spend)",
                 ["Group", "Requests", "Tokens", "Credits"],
                 [[r.key, r.requests, r.total_tokens, credits(r.charged_micro)] for r in rows],
                 {1, 2, 3})


def by_model(session: Session, rng: Range, user_id: str | None) -> Table:
    rows = reports.usage_summary(session, since=rng.since, until=rng.until, by="model",
                                 user_id=user_id)
    return Table("models", "Usage per model",
                 ["Model", "Provider", "Requests", "Input tokens", "Output tokens", "Credits"],
                 [[r.key, r.detail or "", r.requests,
                   r.input_tokens + r.cached_input_tokens + r.cache_write_tokens,
                   r.output_tokens + r.reasoning_tokens, credits(r.charged_micro)]
                  for r in rows], {2, 3, 4, 5})


@dataclass
class Burn:
    name: str
    chart: Markup
    total: int
    remaining: Decimal
    rate: Decimal
    days_left: Decimal | None


def burndowns(session: Session, rng: Range, now: datetime) -> tuple[list[Burn], Table]:
    """Each allowance's remaining credits per day of the range, its rate and days left."""
    days = queries.days_between(rng.since, rng.until, rng.tz)
    before = reports.spent_by_allowance(session, rng.since)
    lifetime = reports.spent_by_allowance(session)
    recent = reports.spent_by_allowance(session, now)
    earlier = reports.spent_by_allowance(session, now - timedelta(days=RATE_DAYS))
    hours = queries.hourly_spend(session, rng.since, rng.until)
    table = Table("allowances", "Sponsored allowances",
                  ["Allowance", "Models", "Total", "Spent", "Remaining", "Credits/day",
                   "Days left", "Expires"], numeric={2, 3, 4, 5, 6})
    out = []
    for a in sponsors.list_allowances(session):
        aid = str(a.id)
        per_day = [0] * len(days)
        index = {d: i for i, d in enumerate(days)}
        for h in hours:
            i = index.get(h.hour.astimezone(rng.tz).date())
            if h.allowance_id is not None and str(h.allowance_id) == aid and i is not None:
                per_day[i] += h.charged_micro
        left, points = a.total_credit_limit * MICRO - before.get(aid, 0), []
        for d, spent in zip(days, per_day, strict=True):
            left -= spent
            points.append((d.isoformat(), micro_to_credits(left)))
        remaining = a.total_credit_limit * MICRO - lifetime.get(aid, 0)
        rate = micro_to_credits(recent.get(aid, 0) - earlier.get(aid, 0)) / RATE_DAYS
        days_left = (micro_to_credits(max(remaining, 0)) / rate).quantize(Decimal("0.1")) \
            if rate > 0 else None
        burn = Burn(a.name, charts.burndown(points, Decimal(a.total_credit_limit),
                                            title=f"{a.name} remaining credits"),
                    a.total_credit_limit, credits(remaining), rate.quantize(Decimal("0.01")),
                    days_left)
        out.append(burn)
        table.rows.append([a.name, ", ".join(sponsors.covered_models(a)), a.total_credit_limit,
                           credits(lifetime.get(aid, 0)), burn.remaining, burn.rate,
                           "" if days_left is None else days_left,
                           a.expires_at.isoformat() if a.expires_at else ""])
    return out, table


def near_limit(session: Session, now: datetime) -> Table:
    settings = budget_settings(session)
    rows = queries.users_near_limit(session, now, settings)
    return Table("near_limit", "Users near or over their limit (this window)",
                 ["User", "Name", "Spent", "Limit", "Used %"],
                 [[n.user_id, n.name, credits(n.spent_micro), credits(n.limit_micro),
                   round(n.share * 100)] for n in rows], {2, 3, 4})


def price_table(session: Session) -> Table:
    cols = ["Provider", "Model", "Name", "Input", "per input tokens", "Output",
            "per output tokens", "Cached input", "per cached tokens", "Updated"]
    table = Table("prices", "Current prices (credits per N tokens)", cols,
                  numeric={3, 4, 5, 6, 7, 8})
    for p in prices.list_prices(session):
        table.rows.append([p.provider, p.id, p.name or "", p.input_cost_credits,
                           p.per_input_tokens, p.output_cost_credits, p.per_output_tokens,
                           "" if p.cached_input_cost_credits is None
                           else p.cached_input_cost_credits,
                           "" if p.per_cached_input_tokens is None
                           else p.per_cached_input_tokens,
                           p.updated_at.date().isoformat() if p.updated_at else ""])
    return table


def alert_table(session: Session, rng: Range, viewer: str | None) -> Table:
    """Alerts fired in the range: all (``viewer`` None), or the viewer's own and those of
    the allowances they sponsor."""
    table = Table("alerts", "Budget alerts (newest first)",
                  ["When (UTC)", "Scope", "Who", "Threshold %", "Spent", "Limit", "Delivery"],
                  numeric={3, 4, 5})
    for r in alerts.list_alerts(session, since=rng.since, until=rng.until, viewer=viewer,
                                limit=MAX_ALERTS):
        table.rows.append([r.created_at.isoformat(timespec="seconds"), r.scope, alerts.who(r),
                           r.threshold, credits(r.spent_micro), credits(r.limit_micro),
                           ", ".join(f"{d.channel}: {d.status}" for d in r.deliveries)])
    return table


def refusal_table(session: Session, rng: Range) -> Table:
    rows = refusals.refusal_totals(session, rng.since, rng.until)
    return Table("refusals", "Refused requests by reason (rate limits, caps, budgets, ...)",
                 ["Reason", "Provider", "Model", "Entry point", "Requests"],
                 [[r.reason, r.provider, r.model_id, r.entry_point, r.count]
                  for r in sorted(rows, key=lambda r: (-r.count, r.reason))], {4})


def link_table(session: Session) -> Table:
    table = Table("links", "Credit groups linked to Open WebUI groups",
                  ["Credit group", "Open WebUI group", "Members", "Status"], numeric={2})
    for name, link in sorted(group_links.links(session).items()):
        table.rows.append([name, link.name or link.openwebui_group_id, link.members,
                           "DELETED in Open WebUI: grants nothing" if link.broken else "ok"])
    return table


@dataclass
class AdminView:
    rng: Range
    daily_chart: Markup
    users_chart: Markup
    groups_chart: Markup
    burns: list[Burn]
    tables: dict[str, Table]


def admin_view(session: Session, rng: Range, now: datetime) -> AdminView:
    chart, daily = day_chart(session, rng, None, "Credits per day by model")
    users = top_users(session, rng)
    groups = top_groups(session, rng)
    burns, allowances = burndowns(session, rng, now)
    tables = {t.name: t for t in (daily, users, groups, by_model(session, rng, None),
                                  allowances, near_limit(session, now), price_table(session),
                                  alert_table(session, rng, None),
                                  refusal_table(session, rng), link_table(session))}
    return AdminView(
        rng, chart,
        charts.hbars([(f"{r[1] or r[0]}", r[4]) for r in users.rows[:TOP]],  # type: ignore[misc]
                     title="Top users"),
        charts.hbars([(str(r[0]), r[3]) for r in groups.rows[:TOP]],  # type: ignore[misc]
                     title="Top groups"),
        burns, tables)


@dataclass
class AllowanceChoice:
    name: str
    models: list[str]
    remaining: Decimal | None
    reset_at: datetime | None
    expires_at: datetime | None


@dataclass
class PersonalView:
    user_id: str
    name: str
    rng: Range
    remaining: Decimal | None
    limit: Decimal | None
    spent: Decimal
    reset_at: datetime | None
    chart: Markup
    tables: dict[str, Table]
    allowances: list[AllowanceChoice]
    caps: list[LimitState] = field(default_factory=list)
    """Spend caps on a model or provider this window."""
    team_budgets: list[LimitState] = field(default_factory=list)
    rate: RateReport | None = None


Usable = tuple[str, list[str], datetime | None]


def personal_view(acct: Accountant, user_id: str, name: str, rng: Range,
                  now: datetime) -> PersonalView:
    """Balances come from ``Accountant.balance`` (each its own short transaction)."""
    balance = acct.balance(user_id, now=now)
    own = balance.limits[0]

    def work(session: Session) -> tuple[Markup, Table, Table, Table, list[Usable]]:
        chart, daily = day_chart(session, rng, user_id, "Your credits per day by model")
        usable = [(a.name, sponsors.covered_models(a), a.expires_at)
                  for a in sponsors.list_allowances(session)
                  if a.expires_at is None or a.expires_at > now]
        return (chart, daily, by_model(session, rng, user_id),
                alert_table(session, rng, user_id), usable)

    chart, daily, models, alert_rows, usable = acct.run(work)
    choices = []
    for a_name, models_covered, expires_at in usable:
        b = acct.balance(user_id, allowance_name=a_name, now=now)
        choices.append(AllowanceChoice(a_name, models_covered, b.remaining, b.reset_at,
                                       expires_at))
    return PersonalView(user_id, name, rng, balance.remaining, own.limit, own.spent,
                        balance.reset_at, chart,
                        {"daily": daily, "models": models, "alerts": alert_rows}, choices,
                        [s for s in balance.limits if s.scope in CAP_SCOPES],
                        [s for s in balance.limits if s.scope == GROUP_TOTAL], balance.rate)
