"""``usage`` reports and exports, and ``balance`` of one user."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, time, timedelta
from typing import IO, Any

import click

from ..accountant import Accountant, BalanceReport, RateReport, utcnow
from ..errors import InvalidInputError, NotFoundError, UnknownUserError
from ..storage import reports, sponsors
from ..storage.users import find_users, get_user
from ._app import Group, Instant, get_app, handles, json_option
from ._output import cell, emit_json, emit_table, jsonable, progress

DEFAULT_DAYS = 30


def _range(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """Default: the last 30 UTC days, today included."""
    tomorrow = datetime.combine(utcnow().date() + timedelta(days=1), time(0), tzinfo=UTC)
    until = until or tomorrow
    since = since or until - timedelta(days=DEFAULT_DAYS)
    return since, until


range_options = [
    click.option("--since", type=Instant(), help="Start: date (UTC midnight) or ISO instant "
                 f"(default: {DEFAULT_DAYS} days before --until)."),
    click.option("--until", type=Instant(end_of_day=True),
                 help="End, exclusive; a date includes that whole day (default: today)."),
    click.option("--user", "user_id", help="Only this user id."),
]


def with_range(func: Any) -> Any:
    for option in reversed(range_options):
        func = option(func)
    return func


@click.group(name="usage", cls=Group, invoke_without_command=True)
@with_range
@click.option("--by", type=click.Choice(reports.GROUP_BY), default="user", show_default=True,
              help="Sum by this dimension (day is the UTC date).")
@json_option
@click.pass_context
@handles(InvalidInputError)
def usage(ctx: click.Context, since: datetime | None, until: datetime | None,
          user_id: str | None, by: str, as_json: bool) -> None:
    """Credits and tokens used in a range, summed by user, model, provider, ..."""
    if ctx.invoked_subcommand is not None:
        return
    since, until = _range(since, until)
    with get_app().session() as s:
        rows = reports.usage_summary(s, since=since, until=until, by=by, user_id=user_id)
        total = reports.usage_total(s, since=since, until=until, user_id=user_id)
    if as_json:
        emit_json({"since": since, "until": until, "by": by, "rows": rows, "total": total})
        return
    click.echo(f"Usage from {since.isoformat()} to {until.isoformat()} by {by}:")
    detail = {"user": "name", "model": "provider", "allowance": "id"}.get(by)
    headers = [by, *([detail] if detail else []), "requests", "input", "cached", "cache write",
               "output", "reasoning", "credits"]
    emit_table(headers, [
        [r.key, *([r.detail] if detail else []), r.requests, r.input_tokens,
         r.cached_input_tokens, r.cache_write_tokens, r.output_tokens, r.reasoning_tokens,
         r.credits] for r in [*rows, total]] if rows else [],
        empty="No usage in this range.")


def _csv_value(value: Any) -> Any:
    return "" if value is None else jsonable(value)


@usage.command()
@with_range
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True)
@click.option("-o", "--output", type=click.File("w"), default="-",
              help="Write to this file instead of stdout.")
@handles(InvalidInputError)
def export(since: datetime | None, until: datetime | None, user_id: str | None, fmt: str,
           output: IO[str]) -> None:
    """Write the raw ledger rows of a range (credits exact, as decimal text)."""
    since, until = _range(since, until)
    columns = [*reports.LEDGER_FIELDS, "credits"]
    with get_app().session() as s:
        count = reports.count_ledger_rows(s, since=since, until=until, user_id=user_id)
        rows = reports.iter_ledger_rows(s, since=since, until=until, user_id=user_id)
        with progress(rows, length=count, label=f"Exporting {count} ledger rows") as bar:
            if fmt == "csv":
                writer = csv.writer(output, lineterminator="\n")
                writer.writerow(columns)
                for row in bar:
                    writer.writerow([_csv_value(getattr(row, c)) for c in columns])
            else:
                output.write("[")
                for number, row in enumerate(bar):
                    item = {c: jsonable(getattr(row, c)) for c in columns}
                    output.write(("," if number else "") + "\n  " + json.dumps(item))
                output.write("\n]\n")


# -- balance ------------------------------------------------------------------------------

def _limits(report: BalanceReport) -> list[dict[str, Any]]:
    return [{"scope": limit.scope, "target": limit.target, "limit": limit.limit,
             "spent": limit.spent, "reserved": limit.reserved, "remaining": limit.remaining,
             "window_start": limit.window_start, "reset_at": limit.reset_at}
            for limit in report.limits]


OWN_LABELS = {"user": "window allowance", "group_total": "team budget: {}",
              "model_cap": "cap on model {}", "provider_cap": "cap on provider {}"}


def _rate_line(rate: RateReport) -> str:
    parts = [f"{cell(rate.requests)} of {cell(rate.requests_per_minute)} requests"
             if rate.requests_per_minute is not None else "",
             f"{cell(rate.tokens)} of {cell(rate.tokens_per_minute)} tokens"
             if rate.tokens_per_minute is not None else ""]
    return (f"rate limits: {', '.join(p for p in parts if p)} this minute "
            f"(next minute {cell(rate.reset_at)})")


def _resolve_user(session: Any, who: str) -> dict[str, Any]:
    found = get_user(session, who)
    if found is not None:
        return found
    by_email = find_users(session, email=who)
    if len(by_email) == 1:
        return by_email[0]
    raise UnknownUserError(f"no Open WebUI user with id or email {who!r}; "
                           "see `user find`")


@click.command()
@click.argument("user")
@json_option
@handles(NotFoundError)
def balance(user: str, as_json: bool) -> None:
    """Remaining credits of USER (id or email): this window, and per sponsored allowance."""
    app = get_app()
    now = utcnow()
    with app.session() as s:
        found = _resolve_user(s, user)
        usable = [a.id for a in sponsors.list_allowances(s)
                  if a.expires_at is None or a.expires_at > now]
    accountant = Accountant(app.engine())
    base = accountant.balance(found["id"], now=now)
    allowances = [accountant.balance(found["id"], allowance_id=a, now=now) for a in usable]
    limits = _limits(base)
    sponsored = [{"name": r.allowance_name, "remaining": r.remaining, "limits": _limits(r)}
                 for r in allowances]
    result = {
        "user": found, "at": now, "remaining": base.remaining, "reset_at": base.reset_at,
        "limits": limits, "allowances": sponsored, "rate": base.rate,
    }
    if as_json:
        emit_json(result)
        return
    click.echo(f"{found['name'] or found['id']} ({found['id']}): "
               f"{'unlimited' if base.remaining is None else cell(base.remaining)} "
               f"credits left; next reset {cell(base.reset_at)}")
    if base.rate is not None:
        click.echo(_rate_line(base.rate))
    rows = [[OWN_LABELS.get(lim["scope"], "{}").format(lim["target"]), *_row(lim)]
            for lim in limits]
    for r in allowances:
        rows += [[f"sponsored: {r.allowance_name}", *_row(lim)] for lim in _limits(r)]
    emit_table(["allowance", "scope", "limit", "spent", "reserved", "remaining", "resets at"],
               rows)


def _row(limit: dict[str, Any]) -> list[Any]:
    return [limit["scope"], limit["limit"], limit["spent"], limit["reserved"],
            limit["remaining"], limit["reset_at"]]
