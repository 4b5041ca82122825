"""0.1.10's model pricing functions, as thin wrappers over ``storage.prices``.

Fixed: ``delete_model_pricing`` honours ``provider``; zero (free) prices are valid; a
price change keeps the history, so usage already charged is never re-priced.
"""

from __future__ import annotations

from typing import Any

from .accountant import transaction, utcnow
from .errors import AlreadyExistsError, InvalidInputError
from .models import ModelPricingSchema
from .storage import prices
from .storage.schema import ModelPricing

_FIELDS = ("input_cost_credits", "per_input_tokens", "output_cost_credits",
           "per_output_tokens", "cached_input_cost_credits", "per_cached_input_tokens",
           "cache_write_cost_credits", "per_cache_write_tokens")


def as_dict(row: ModelPricing) -> dict[str, Any]:
    """0.1.10's dict shape, plus the cache rates."""
    return {"provider": row.provider, "id": row.id, "name": row.name,
            **{f: getattr(row, f) for f in _FIELDS}}


def get_model_pricing(database_url: str | None = None, model_id: str | None = None,
                      provider: str | None = None) -> list[dict[str, Any]]:
    with transaction(database_url) as s:
        return [as_dict(r) for r in prices.list_prices(s, provider, model_id)]


def list_model_pricing(database_url: str | None = None,
                       provider: str | None = None) -> list[dict[str, Any]]:
    with transaction(database_url) as s:
        return [as_dict(r) for r in prices.list_prices(s, provider)]


def add_model_pricing(database_url: str | None, model_pricing: list[ModelPricingSchema]) -> None:
    """Add new models; all or nothing. A model that is already priced is an error."""
    now = utcnow()
    with transaction(database_url) as s:
        for m in model_pricing:
            if s.get(ModelPricing, (m.provider, m.id)) is not None:
                raise AlreadyExistsError(
                    f"model {m.id!r} of provider {m.provider!r} is already priced; "
                    "use update or upsert")
            prices.set_price(s, provider=m.provider, model_id=m.id, name=m.name,
                             price=m.price_input(), now=now)


def update_model_pricing(database_url: str | None, model_id: str, provider: str,
                         updates: dict[str, Any]) -> bool:
    """Change some fields of an existing model; False if it does not exist or nothing to do."""
    allowed = {"name", *_FIELDS}
    unknown = set(updates) - allowed
    if unknown:
        raise InvalidInputError(f"cannot update {', '.join(sorted(unknown))}; "
                                f"allowed: {', '.join(sorted(allowed))}")
    if not updates:
        return False
    with transaction(database_url) as s:
        row = s.get(ModelPricing, (provider, model_id))
        if row is None:
            return False
        current = as_dict(row)
        merged = ModelPricingSchema(**{**current, **updates})
        prices.set_price(s, provider=provider, model_id=model_id, name=merged.name,
                         price=merged.price_input(), now=utcnow())
        return True


def upsert_model_pricing(database_url: str | None, provider: str, model_id: str, name: str,
                         input_cost_credits: int, per_input_tokens: int,
                         output_cost_credits: int, per_output_tokens: int,
                         **cache_rates: int | None) -> bool:
    """Create or update a model's price; always True (0.1.10's contract)."""
    schema = ModelPricingSchema(
        provider=provider, id=model_id, name=name, input_cost_credits=input_cost_credits,
        per_input_tokens=per_input_tokens, output_cost_credits=output_cost_credits,
        per_output_tokens=per_output_tokens, **cache_rates)
    with transaction(database_url) as s:
        prices.set_price(s, provider=provider, model_id=model_id, name=name,
                         price=schema.price_input(), now=utcnow())
    return True


def delete_model_pricing(database_url: str | None, model_id: str,
                         provider: str | None = None) -> bool:
    """Delete the model's price (only the given provider's, when given)."""
    with transaction(database_url) as s:
        rows = prices.list_prices(s, provider, model_id)
        for row in rows:
            prices.delete_price(s, provider=row.provider, model_id=row.id)
        return bool(rows)
