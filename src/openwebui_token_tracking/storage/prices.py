"""Model prices: the catalogue (current price per model) and its dated history."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..accounting.pricing import Price, Rate
from ..errors import InvalidInputError, NotFoundError
from .prepared import run
from .schema import ModelPricing, PriceHistory

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENAI_SOURCE = "genai-prices"
"""``source`` of a price written from genai-prices' data (an admin's is ``manual``)."""


@dataclass(frozen=True)
class PriceInput:
    """A price as admins write it: credits per N tokens, 0.1.10's columns plus cache rates."""

    input_cost_credits: int
    per_input_tokens: int
    output_cost_credits: int
    per_output_tokens: int
    cached_input_cost_credits: int | None = None
    per_cached_input_tokens: int | None = None
    cache_write_cost_credits: int | None = None
    per_cache_write_tokens: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidInputError(f"{f.name} must be a whole number, got {v!r}")
            if f.name.startswith("per_") and v <= 0:
                raise InvalidInputError(f"{f.name} must be positive, got {v}")
            if v < 0:
                raise InvalidInputError(f"{f.name} must not be negative, got {v}")
        for kind in ("cached_input", "cache_write"):
            cost = getattr(self, f"{kind}_cost_credits")
            per = getattr(self, f"per_{kind}_tokens")
            if (cost is None) != (per is None):
                raise InvalidInputError(
                    f"give both {kind}_cost_credits and per_{kind}_tokens, or neither"
                )

    def to_price(self, effective_from: datetime | None = None) -> Price:
        def rate(cost: int | None, per: int | None) -> Rate | None:
            return None if cost is None or per is None else Rate(cost, per)

        return Price(
            input=Rate(self.input_cost_credits, self.per_input_tokens),
            output=Rate(self.output_cost_credits, self.per_output_tokens),
            cached_input=rate(self.cached_input_cost_credits, self.per_cached_input_tokens),
            cache_write=rate(self.cache_write_cost_credits, self.per_cache_write_tokens),
            effective_from=effective_from,
        )

    def as_columns(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_row(cls, row: object) -> PriceInput:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


PRICE_COLUMNS = tuple(f.name for f in fields(PriceInput))
"""The price columns, in ``PriceInput``'s order."""


def set_price(
    session: Session,
    *,
    provider: str,
    model_id: str,
    name: str | None,
    price: PriceInput,
    now: datetime,
    effective_from: datetime | None = None,
    source: str = "manual",
    matched_model_id: str | None = None,
) -> ModelPricing:
    """Create or change a model's price from ``effective_from`` (default ``now``) on.

    Usage already charged keeps its charge; the old price stays in the history.
    ``matched_model_id`` marks a resolved alias (see ``storage.aliases``); any other
    write clears it. A changed price also changes, from the same instant, the resolved
    aliases of this model that still follow it (source ``genai-prices``).
    """
    if not provider or not model_id:
        raise InvalidInputError("provider and model id must not be empty")
    start = effective_from or now
    row = session.get(ModelPricing, (provider, model_id))
    if row is None:
        row = ModelPricing(provider=provider, id=model_id)
        session.add(row)
    if name is not None:
        row.name = name
    elif row.name is None:
        row.name = model_id
    changed = row.input_cost_credits is None or PriceInput.from_row(row) != price
    for key, value in price.as_columns().items():
        setattr(row, key, value)
    row.source = source
    row.matched_model_id = matched_model_id
    row.updated_at = now
    if changed:
        existing = session.scalar(
            sa.select(PriceHistory).where(
                PriceHistory.provider == provider,
                PriceHistory.model_id == model_id,
                PriceHistory.effective_from == start,
            )
        )
        if existing is None:
            existing = PriceHistory(provider=provider, model_id=model_id, effective_from=start)
            session.add(existing)
        for key, value in price.as_columns().items():
            setattr(existing, key, value)
        existing.source = source
    session.flush()
    if changed:
        for alias in following_aliases(session, provider, model_id):
            set_price(session, provider=provider, model_id=alias.id, name=None, price=price,
                      now=now, effective_from=start, source=GENAI_SOURCE,
                      matched_model_id=model_id)
    return row


def following_aliases(session: Session, provider: str, model_id: str) -> list[ModelPricing]:
    """Ids resolved to this model through genai-prices' matching that still follow its
    price (an admin's own price for an alias, source ``manual``, does not)."""
    return list(session.scalars(sa.select(ModelPricing).where(
        ModelPricing.provider == provider, ModelPricing.matched_model_id == model_id,
        ModelPricing.source == GENAI_SOURCE, ModelPricing.id != model_id,
    ).order_by(ModelPricing.id)))


def delete_price(session: Session, *, provider: str, model_id: str) -> list[str]:
    """Remove a model from the catalogue: it can no longer be used or charged.

    Its resolved aliases that follow its price go with it (they were priced only
    because they match it); returns their ids. Their history stays, so none is
    resolved again by itself.
    """
    row = session.get(ModelPricing, (provider, model_id))
    if row is None:
        raise NotFoundError(f"no price for model {model_id!r} of provider {provider!r}")
    aliases = following_aliases(session, provider, model_id)
    for alias in aliases:
        session.delete(alias)
    session.delete(row)
    session.flush()
    return [alias.id for alias in aliases]


_history = cast(sa.Table, PriceHistory.__table__)
_catalogue = cast(sa.Table, ModelPricing.__table__)
_price_at_any = (  # Core, not ORM: this runs before every request
    sa.select(_history)
    .where(
        _history.c.provider == sa.bindparam("provider"),
        _history.c.model_id == sa.bindparam("model_id"),
        _history.c.effective_from <= sa.bindparam("at", type_=_history.c.effective_from.type),
    )
    .order_by(_history.c.effective_from.desc())
    .limit(1)
)
"""The price in force, even if the model was removed from the catalogue since."""
_price_at = _price_at_any.join_from(_history, _catalogue, sa.and_(
    _catalogue.c.provider == _history.c.provider, _catalogue.c.id == _history.c.model_id))
"""The price in force of a model still in the catalogue."""
price_in_force = _price_at


def price_at(session: Session, provider: str, model_id: str, at: datetime, *,
             listed_only: bool = True) -> Price | None:
    """The price in force for the model at ``at``, or None if the model is not priced.

    ``listed_only=False`` also finds the price of a model removed from the catalogue
    (to charge a request that was admitted before the removal).
    """
    row = run(session, _price_at if listed_only else _price_at_any,
              {"provider": provider, "model_id": model_id, "at": at}).first()
    if row is None:
        return None
    return PriceInput.from_row(row).to_price(row.effective_from)


def list_prices(session: Session, provider: str | None = None,
                model_id: str | None = None) -> list[ModelPricing]:
    q = sa.select(ModelPricing).order_by(ModelPricing.provider, ModelPricing.id)
    if provider:
        q = q.where(ModelPricing.provider == provider)
    if model_id:
        q = q.where(ModelPricing.id == model_id)
    return list(session.scalars(q))


def free_models(session: Session) -> list[ModelPricing]:
    """Models whose every rate is zero: usable whatever a user's balance."""
    q = sa.select(ModelPricing).where(
        ModelPricing.input_cost_credits == 0,
        ModelPricing.output_cost_credits == 0,
        sa.func.coalesce(ModelPricing.cached_input_cost_credits, 0) == 0,
        sa.func.coalesce(ModelPricing.cache_write_cost_credits, 0) == 0,
    ).order_by(ModelPricing.provider, ModelPricing.id)
    return list(session.scalars(q))
