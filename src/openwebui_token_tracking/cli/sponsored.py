"""``sponsored``: credits a sponsor pays for chosen models, with total and daily limits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from ..accountant import utcnow
from ..accounting.money import micro_to_credits
from ..errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ..storage import sponsors
from ..storage.reports import allowance_spent
from ..storage.schema import SponsoredAllowance
from ._app import Group, Instant, get_app, handles, json_option
from ._output import emit_json, emit_table

F = TypeVar("F", bound=Callable[..., Any])


@click.group(name="sponsored", cls=Group)
def sponsored() -> None:
    """Manage sponsored allowances."""


def which(func: F) -> F:
    """``--name`` / ``--id`` naming one allowance."""
    func = click.option("--id", "allowance_id", help="Id of the sponsored allowance.")(func)
    return click.option("--name", help="Name of the sponsored allowance.")(func)  # type: ignore


def _find(session: Session, name: str | None, allowance_id: str | None) -> SponsoredAllowance:
    if name is None and allowance_id is None:
        raise click.UsageError("give --name or --id")
    return sponsors.get_allowance(session, name=name, allowance_id=allowance_id)


def _describe(session: Session, a: SponsoredAllowance, now: datetime) -> dict[str, Any]:
    return {
        "id": a.id, "name": a.name, "sponsor_id": a.sponsor_id,
        "models": sponsors.covered_models(a), "total_credit_limit": a.total_credit_limit,
        "daily_credit_limit": a.daily_credit_limit,
        "spent": micro_to_credits(allowance_spent(session, a.id)),
        "created_at": a.creation_date, "expires_at": a.expires_at,
        "expired": a.expires_at is not None and now >= a.expires_at,
    }


def _show(items: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(items)
        return
    emit_table(
        ["name", "sponsor", "models", "total limit", "spent", "daily limit", "expires"],
        [[i["name"], i["sponsor_id"], ", ".join(i["models"]), i["total_credit_limit"],
          i["spent"], i["daily_credit_limit"],
          f"{i['expires_at'].isoformat(timespec='seconds')}{' (expired)' if i['expired'] else ''}"
          if i["expires_at"] else None] for i in items],
        empty="No sponsored allowances.")


limit_help = "whole credits"


@sponsored.command()
@click.option("--name", required=True, help="Unique name (shown to users).")
@click.option("--sponsor-id", help="Open WebUI user id of the sponsor.")
@click.option("-m", "--model", "models", multiple=True, required=True,
              help="A model id the allowance covers (repeat for several).")
@click.option("-t", "--total-limit", type=int, required=True,
              help=f"Credits over all users since creation ({limit_help}).")
@click.option("-d", "--daily-limit", type=int,
              help=f"Credits per user per budget window ({limit_help}; default: none).")
@click.option("--expires", type=Instant(end_of_day=True),
              help="Expiry: a date (end of that day, UTC) or an ISO 8601 instant.")
@handles(AlreadyExistsError, InvalidInputError)
def create(name: str, sponsor_id: str | None, models: tuple[str, ...], total_limit: int,
           daily_limit: int | None, expires: datetime | None) -> None:
    """Create a sponsored allowance."""
    with get_app().session() as s:
        allowance = sponsors.create_allowance(
            s, name=name, sponsor_id=sponsor_id, models=models, total_credit_limit=total_limit,
            daily_credit_limit=daily_limit, now=utcnow(), expires_at=expires)
        allowance_id = allowance.id
    click.echo(f"Created sponsored allowance {name!r} (id {allowance_id}).")


@sponsored.command()
@which
@json_option
@handles(NotFoundError, InvalidInputError)
def get(name: str | None, allowance_id: str | None, as_json: bool) -> None:
    """Show one sponsored allowance, with what it has spent."""
    with get_app().session() as s:
        item = _describe(s, _find(s, name, allowance_id), utcnow())
    if as_json:
        emit_json(item)
    else:
        _show([item], False)


@sponsored.command(name="list")
@click.option("--sponsor-id", help="Only this sponsor's allowances.")
@json_option
@handles()
def list_(sponsor_id: str | None, as_json: bool) -> None:
    """List the sponsored allowances."""
    now = utcnow()
    with get_app().session() as s:
        items = [_describe(s, a, now) for a in sponsors.list_allowances(s, sponsor_id)]
    _show(items, as_json)


@sponsored.command()
@which
@click.option("--new-name", help="Rename the allowance.")
@click.option("--sponsor-id", help="New sponsor id.")
@click.option("-m", "--model", "models", multiple=True,
              help="Model id covered (repeatable; replaces the current models).")
@click.option("-t", "--total-limit", type=int, help="New total credit limit.")
@click.option("-d", "--daily-limit", type=int, help="New per-user credit limit per window.")
@click.option("--no-daily-limit", is_flag=True, help="Remove the per-user limit.")
@click.option("--expires", type=Instant(end_of_day=True), help="New expiry (date or instant).")
@click.option("--no-expiry", is_flag=True, help="Remove the expiry.")
@handles(NotFoundError, AlreadyExistsError, InvalidInputError)
def update(name: str | None, allowance_id: str | None, new_name: str | None,
           sponsor_id: str | None, models: tuple[str, ...], total_limit: int | None,
           daily_limit: int | None, no_daily_limit: bool, expires: datetime | None,
           no_expiry: bool) -> None:
    """Change the given fields of a sponsored allowance."""
    if daily_limit is not None and no_daily_limit:
        raise click.UsageError("--daily-limit and --no-daily-limit exclude each other")
    if expires is not None and no_expiry:
        raise click.UsageError("--expires and --no-expiry exclude each other")
    changes: dict[str, Any] = {}
    if daily_limit is not None or no_daily_limit:
        changes["daily_credit_limit"] = daily_limit
    if expires is not None or no_expiry:
        changes["expires_at"] = expires
    if not (changes or new_name or sponsor_id or models or total_limit is not None):
        raise click.UsageError("nothing to update: give at least one field to change")
    with get_app().session() as s:
        allowance = _find(s, name, allowance_id)
        sponsors.update_allowance(s, allowance, new_name=new_name, sponsor_id=sponsor_id,
                                  models=list(models) or None, total_credit_limit=total_limit,
                                  **changes)
        final = allowance.name
    click.echo(f"Updated sponsored allowance {final!r}.")


@sponsored.command()
@which
@handles(NotFoundError, InvalidInputError)
def delete(name: str | None, allowance_id: str | None) -> None:
    """Delete a sponsored allowance (its usage stays in the ledger)."""
    with get_app().session() as s:
        allowance = _find(s, name, allowance_id)
        label = allowance.name
        sponsors.delete_allowance(s, allowance)
    click.echo(f"Deleted sponsored allowance {label!r}.")
