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
from ..model_match import Match, match_model
from ..price_data import (
    ADD,
    ALIAS,
    CHANGE,
    KEEP_DELETED,
    KEEP_MANUAL,
    CatalogueEntry,
    CurrentPrice,
    SyncChange,
)
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


def alias_changes(session: Session, now: datetime, provider: str | None,
                  planned: Sequence[SyncChange]) -> list[SyncChange]:
    """What a sync does to resolved aliases (rows priced through genai-prices' matching
    that still follow their match): matched again with the installed data, each gets
    its matched model's price here (after ``planned``), else genai-prices' price."""
    after = {(c.entry.provider, c.entry.model_id): c.entry.price for c in planned if c.applies}
    rate_usd = credits_per_usd(session)
    changes = []
    for row in prices.list_prices(session, provider=provider):
        if row.matched_model_id is None or row.source != price_data.SOURCE or \
                (row.provider, row.id) in after:  # genai-prices now prices this id itself
            continue
        found = match_model(row.provider, row.id)
        matched = found.matched_id if isinstance(found, Match) else row.matched_model_id
        current = PriceInput.from_row(row)
        target = after.get((row.provider, matched))
        canonical = session.get(ModelPricing, (row.provider, matched))
        if target is None and canonical is not None and matched != row.id:
            target = PriceInput.from_row(canonical)
        if target is None and isinstance(found, Match):
            in_force = [p for start, p in found.price_steps(rate_usd) if start <= now]
            target = in_force[-1] if in_force else None
        entry = CatalogueEntry(row.provider, row.id, row.name or row.id, target or current,
                               matched_model_id=matched)
        unchanged = entry.price == current and matched == row.matched_model_id
        changes.append(SyncChange(ALIAS, entry) if unchanged
                       else SyncChange(CHANGE, entry, current))
    return changes


def apply_changes(session: Session, changes: Sequence[SyncChange], now: datetime) -> int:
    """Write the additions and changes (from ``now`` on, history kept); returns how many."""
    applied = [c for c in changes if c.applies]
    for change in applied:
        e = change.entry
        prices.set_price(session, provider=e.provider, model_id=e.model_id, name=e.name,
                         price=e.price, now=now, source=price_data.SOURCE,
                         matched_model_id=e.matched_model_id)
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
    if e.matched_model_id is not None:
        if change.action == ALIAS:
            return f"= {e.provider}/{e.model_id}: resolved alias of {e.matched_model_id}, unchanged"
        assert change.old is not None
        moved = describe_change(change.old, e.price) or "same price"
        return f"~ {e.provider}/{e.model_id} (alias of {e.matched_model_id}): {moved}"
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
    prices an admin set by hand are left alone and listed. Resolved aliases (dated ids
    priced through genai-prices' matching) are matched again and get their matched
    model's price.
    """
    now = utcnow()
    with get_app().session() as s:
        rate_usd: Decimal = credits_per_usd(s)
        changes = plan(s, now, provider)
        changes += alias_changes(s, now, provider, changes)
        if not dry_run:
            apply_changes(s, changes, now)
    added = sum(c.action == ADD for c in changes)
    changed = sum(c.action == CHANGE for c in changes)
    deleted = sum(c.action == KEEP_DELETED for c in changes)
    kept = sum(c.action == KEEP_MANUAL for c in changes)
    resolved = sum(c.entry.matched_model_id is not None for c in changes)
    if as_json:
        emit_json({
            "genai_prices_version": price_data.data_version(), "credits_per_usd": rate_usd,
            "dry_run": dry_run, "added": added, "changed": changed, "kept_manual": kept,
            "kept_deleted": deleted, "resolved_aliases": resolved,
            "changes": [{"action": c.action, "provider": c.entry.provider,
                         "id": c.entry.model_id, "name": c.entry.name,
                         "matched_model_id": c.entry.matched_model_id,
                         "tiered": c.entry.tiered, "old": _as_dict(c.old),
                         "new": _as_dict(c.entry.price)} for c in changes],
        })
        return
    for change in changes:
        click.echo(diff_line(change))
    click.echo(f"genai-prices {price_data.data_version()} at {rate_usd.normalize():f} credits "
               f"per USD: {added} added, {changed} changed, {kept} set by hand and kept, "
               f"{deleted} deleted and not added back, {resolved} resolved alias(es) "
               f"checked{' (dry run: nothing written)' if dry_run else ''}.")
