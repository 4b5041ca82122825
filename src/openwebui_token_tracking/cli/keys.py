"""``keys``: per-key usage this window and per-key budgets (admin: any key, any cap)."""

from __future__ import annotations

from decimal import Decimal

import click

from ..accountant import utcnow
from ..accounting.money import credits_to_micro, micro_to_credits
from ..errors import InvalidInputError, NotFoundError
from ..storage import key_budgets
from ..storage.settings_store import budget_settings
from ._app import NEGATIVE_ARGS, Group, get_app, handles, json_option
from ._output import emit_json, emit_table


@click.group(name="keys", cls=Group)
def keys() -> None:
    """API keys used with the /v1 gateway: usage and budgets."""


def _credits(micro: int | None) -> Decimal | None:
    return None if micro is None else micro_to_credits(micro)


@keys.command(name="list")
@click.option("--user", "user_id", help="Only this user's keys.")
@json_option
@handles(InvalidInputError)
def list_keys(user_id: str | None, as_json: bool) -> None:
    """Every key (its id, never the key) with its budget and spend this window."""
    now = utcnow()
    with get_app().session() as s:
        found = key_budgets.key_overview(s, user_id, now, budget_settings(s))
    rows = [{"key_id": o.state.key_id, "user_id": o.state.user_id, "current": o.current,
             "requests": o.state.requests, "spent": _credits(o.state.spent_micro),
             "limit": _credits(o.state.limit_micro), "set_by": o.state.set_by,
             "reset_at": o.state.window_end} for o in found]
    if as_json:
        emit_json(rows)
        return
    emit_table(["key", "user", "current", "requests", "spent", "budget", "resets"],
               [[r["key_id"], r["user_id"], "yes" if r["current"] else "", r["requests"],
                 r["spent"], r["limit"], r["reset_at"]] for r in rows])


@keys.command(name="set-budget", context_settings=NEGATIVE_ARGS)
@click.argument("key_id")
@click.argument("credits")
@handles(InvalidInputError, NotFoundError)
def set_budget(key_id: str, credits: str) -> None:
    """Cap KEY_ID at CREDITS per budget window (below its owner's allowance)."""
    try:
        micro = credits_to_micro(credits)
    except ValueError as exc:
        raise InvalidInputError(f"CREDITS: {exc}") from exc
    with get_app().session() as s:
        owner = key_budgets.owner_of(s, key_id)
        key_budgets.set_budget(s, api_key_id=key_id, owner_id=owner, limit_micro=micro,
                               by="cli", by_admin=True, now=utcnow())
    click.echo(f"Key {key_id} of {owner} may spend {micro_to_credits(micro).normalize():f} "
               "credits per window.")


@keys.command(name="clear-budget")
@click.argument("key_id")
@handles(InvalidInputError, NotFoundError)
def clear_budget(key_id: str) -> None:
    """Remove KEY_ID's budget: it spends its owner's allowance again."""
    with get_app().session() as s:
        key_budgets.clear_budget(s, key_id)
    click.echo(f"Key {key_id} has no budget of its own now.")
