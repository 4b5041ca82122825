"""``pricing resolve``: which price a model id would get, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..accountant import utcnow
from ..errors import InvalidInputError, UnknownModelError
from ..model_match import GENAI_IDS
from ..storage import aliases, prices
from ..storage.aliases import MATCH, NO_MATCH, Resolution
from ..storage.schema import ModelPricing, PriceHistory
from ._app import get_app, handles, json_option
from ._output import emit_json
from .pricing_sync import describe


def _candidates(session: Session, model_id: str) -> list[str]:
    """Providers that price or once priced the id; else every provider matching covers."""
    known = set(session.scalars(sa.select(ModelPricing.provider)
                                .where(ModelPricing.id == model_id)))
    known |= set(session.scalars(sa.select(PriceHistory.provider)
                                 .where(PriceHistory.model_id == model_id)))
    return sorted(known) if known else sorted(GENAI_IDS)


def explain_all(session: Session, model_id: str, provider: str | None,
                now: datetime) -> list[Resolution]:
    """The resolution for ``provider``, or for every provider the id could belong to:
    those that price it if any does, else those that know it at all, else all."""
    if provider is not None:
        return [aliases.explain(session, provider, model_id, now)]
    found = [aliases.explain(session, p, model_id, now) for p in _candidates(session, model_id)]
    usable = [r for r in found if r.usable]
    known = [r for r in found if r.kind != NO_MATCH]
    return usable or known or found


def resolution_json(res: Resolution) -> dict[str, Any]:
    return {
        "provider": res.provider, "id": res.model_id, "outcome": res.kind,
        "usable": res.usable, "matched_model_id": res.matched_id, "name": res.name,
        "source": res.source, "price_from": res.price_from,
        "price": None if res.price is None else res.price.as_columns(),
        "nearest": list(res.nearest), "explanation": res.explanation(),
    }


def apply(session: Session, provider: str, model_id: str, now: datetime) -> Resolution:
    """Record the resolution now, also for an id an admin deleted earlier."""
    loaded = aliases.load(session, provider)
    res = aliases.decide(loaded, model_id, now, ignore_own_deletion=True)
    if not res.usable:
        raise UnknownModelError(res.refusal())
    if res.kind != MATCH:
        return res
    if model_id in loaded.ever_priced:  # deleted once: priced again from now on
        assert res.price is not None
        prices.set_price(session, provider=provider, model_id=model_id, name=res.name,
                         price=res.price, now=now, source=prices.GENAI_SOURCE,
                         matched_model_id=res.matched_id)
    else:
        aliases.record(session, res, now)
    return aliases.explain(session, provider, model_id, now)


@click.command()
@click.argument("model_id")
@click.option("--provider", help="Provider of the model (default: every provider it could "
              "belong to).")
@click.option("--apply", "apply_", is_flag=True,
              help="Record the resolution as a price row now (also for an id an admin "
              "deleted earlier); needs --provider.")
@json_option
@handles(InvalidInputError, UnknownModelError)
def resolve(model_id: str, provider: str | None, apply_: bool, as_json: bool) -> None:
    """Explain which price MODEL_ID gets and why: its own price row, a genai-prices match
    to a priced model (recorded as an alias on first use), or none (refused, with the
    nearest priced ids). Writes nothing unless --apply."""
    if apply_ and provider is None:
        raise click.UsageError("--apply needs --provider")
    now = utcnow()
    with get_app().session() as s:
        if apply_:
            assert provider is not None
            results = [apply(s, provider, model_id, now)]
        else:
            results = explain_all(s, model_id, provider, now)
    if as_json:
        emit_json([resolution_json(r) for r in results])
        return
    for res in results:
        click.echo(res.explanation())
        if res.price is not None:
            click.echo(f"  price: {describe(res.price)}")
