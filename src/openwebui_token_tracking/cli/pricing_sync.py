"""``pricing sync``: refresh prices from the installed genai-prices data, and show the diff."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import price_data
from ..accountant import utcnow
from ..errors import InvalidInputError
from ..price_data import ADD, CHANGE, KEEP_DELETED, CatalogueEntry, CurrentPrice, SyncChange
from ..storage import prices
from ..storage.prices import PriceInput
from ..storage.schema import ModelPricing, PriceHistory
from ..storage.settings_store import credits_per_usd
from ._app import get_app, handles, json_option
from ._output import emit_json, rate

KINDS = ("input", "output", "cached_input", "cache_write")


def current_prices(session: Session) -> dict[tuple[str, str], CurrentPrice]:
    return {(row.provider, row.id): CurrentPrice(PriceInput.from_row(row), row.source)
            for row in prices.list_prices(session)}


def deleted_models(session: Session) -> set[tuple[str, str]]:
    """Models with a price history but no current price: an admin deleted them."""
    priced = sa.select(ModelPricing.provider, ModelPricing.id)
    rows = session.execute(
        sa.select(PriceHistory.provider, PriceHistory.model_id).distinct()
        .where(sa.tuple_(PriceHistory.provider, PriceHistory.model_id).not_in(priced)))
    return {(provider, model_id) for provider, model_id in rows}


def plan(session: Session, now: datetime, provider: str | None, *,
         only_new: bool = False) -> list[SyncChange]:
    return price_data.plan_sync(current_prices(session), catalogue(session, now, provider),
                                deleted=deleted_models(session), only_new=only_new)


def apply_changes(session: Session, changes: Sequence[SyncChange], now: datetime) -> int:
    """Write the additions and changes (from ``now`` on, history kept); returns how many."""
    applied = [c for c in changes if c.applies]
    for change in applied:
        e = change.entry
        prices.set_price(session, provider=e.provider, model_id=e.model_id, name=e.name,
                         price=e.price, now=now, source=price_data.SOURCE)
    return len(applied)


def catalogue(session: Session, now: datetime, provider: str | None) -> list[CatalogueEntry]:
    return price_data.default_catalogue(
        credits_per_usd=credits_per_usd(session), at=now,
        providers=None if provider is None else [provider])


def _rate_of(price: PriceInput, kind: str) -> str:
    return rate(getattr(price, f"{kind}_cost_credits"), getattr(price, f"per_{kind}_tokens"))


def describe(price: PriceInput) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {_rate_of(price, k)}" for k in KINDS
                     if getattr(price, f"{k}_cost_credits") is not None)


def describe_change(old: PriceInput, new: PriceInput) -> str:
    parts = [f"{k.replace('_', ' ')} {_rate_of(old, k)} -> {_rate_of(new, k)}"
             for k in KINDS if _rate_of(old, k) != _rate_of(new, k)]
    return ", ".join(parts)


def diff_line(change: SyncChange) -> str:
    e = change.entry
    tiered = " (base tier of a tiered price)" if e.tiered else ""
    if change.action == ADD:
        return f"+ {e.provider}/{e.model_id}: {describe(e.price)}{tiered}"
    if change.action == KEEP_DELETED:
        return f"- {e.provider}/{e.model_id}: deleted by an admin, not added back"
    assert change.old is not None
    if change.action == CHANGE:
        return f"~ {e.provider}/{e.model_id}: {describe_change(change.old, e.price)}{tiered}"
    return (f"! {e.provider}/{e.model_id}: set by hand, kept "
            f"(genai-prices: {describe_change(change.old, e.price)})")


def _as_dict(price: PriceInput | None) -> dict[str, Any] | None:
    return None if price is None else {f.name: getattr(price, f.name) for f in fields(price)}


@click.command()
@click.option("--provider", help="Only this provider: openai, anthropic, google_genai, mistral.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@json_option
@handles(InvalidInputError)
def sync(provider: str | None, dry_run: bool, as_json: bool) -> None:
    """Refresh prices from the installed genai-prices data (no network).

    New models are added; changed prices apply from now on (the history is kept);
    prices an admin set by hand are left alone and listed.
    """
    now = utcnow()
    with get_app().session() as s:
        rate_usd: Decimal = credits_per_usd(s)
        changes = plan(s, now, provider)
        if not dry_run:
            apply_changes(s, changes, now)
    added = sum(c.action == ADD for c in changes)
    changed = sum(c.action == CHANGE for c in changes)
    deleted = sum(c.action == KEEP_DELETED for c in changes)
    kept = len(changes) - added - changed - deleted
    if as_json:
        emit_json({
            "genai_prices_version": price_data.data_version(), "credits_per_usd": rate_usd,
            "dry_run": dry_run, "added": added, "changed": changed, "kept_manual": kept,
            "kept_deleted": deleted,
            "changes": [{"action": c.action, "provider": c.entry.provider,
                         "id": c.entry.model_id, "name": c.entry.name,
                         "tiered": c.entry.tiered, "old": _as_dict(c.old),
                         "new": _as_dict(c.entry.price)} for c in changes],
        })
        return
    for change in changes:
        click.echo(diff_line(change))
    click.echo(f"genai-prices {price_data.data_version()} at {rate_usd.normalize():f} credits "
               f"per USD: {added} added, {changed} changed, {kept} set by hand and kept, "
               f"{deleted} deleted and not added back"
               f"{' (dry run: nothing written)' if dry_run else ''}.")
