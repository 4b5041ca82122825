"""Model ids priced on first use through genai-prices' matching, recorded as price rows.

A request for a model id without a price row (``gpt-4o-2024-08-06``) asks
:func:`.model_match.match_model` which model it is (``gpt-4o``). The rules, in order:

1. A price row for the id wins: an admin's, a default, or an alias recorded earlier.
2. An id that was priced once and deleted (its price history outlives the row) stays
   refused: an admin deleted it on purpose (as ``pricing sync`` keeps deleted models
   deleted). ``pricing resolve --apply`` or ``pricing add`` prices it again.
3. Matched to a model priced in this database, whatever its source (an admin's own
   price included): the alias gets that model's price and price history, and follows
   it from then on (``storage.prices.set_price`` changes both).
4. Matched to a model an admin deleted: refused, as that model is.
5. Matched to a model not priced here (a deprecated snapshot): genai-prices' price
   history of the matched model, at the ``credits_per_usd`` setting.
6. No match: refused (fail closed), naming the nearest priced ids of the provider.

A resolution is recorded once, as an ordinary price row (source ``genai-prices``, the
matched id in ``matched_model_id``) that admins list, override or delete like any
other; the next request finds the row in the single price lookup admission always
makes. Both inserts are ``ON CONFLICT DO NOTHING``, so concurrent first requests for
the same id all succeed and the row is written once.

A refusal is remembered in-process for :data:`MISS_TTL` per engine, so a client that
keeps asking for an unknown id costs one price lookup per request, not a new match.
An admin's new price for that id is seen at once (the row lookup comes first); a
re-priced matched model is seen when the remembered refusal expires.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..accounting.pricing import Price
from ..errors import UnknownModelError
from ..model_match import GENAI_IDS, Match, NoMatch, match_model, nearest
from .prices import GENAI_SOURCE, PriceInput, price_at
from .schema import ModelPricing, PriceHistory
from .settings_store import credits_per_usd

EXPLICIT = "explicit"
"""A price row of its own: an admin's, a default, or one ``pricing sync`` wrote."""
ALIAS = "alias"
"""A resolution recorded earlier: a price row with ``matched_model_id``."""
MATCH = "match"
"""No row yet; genai-prices matches it, and the first request records the row."""
DELETED = "deleted"
"""Priced once and deleted by an admin: refused."""
MATCHED_DELETED = "matched-deleted"
"""Matches a model an admin deleted: refused."""
NO_MATCH = "no-match"
"""Neither priced nor matched: refused."""
USABLE = frozenset({EXPLICIT, ALIAS, MATCH})

FROM_DATABASE = "database"
"""A match priced as the matched model is priced in this database."""
FROM_GENAI = "genai-prices"
"""A match priced from genai-prices' data (the matched model is not priced here)."""

MISS_TTL = timedelta(seconds=60)
MISS_CACHE_SIZE = 1024

catalogue = cast(sa.Table, ModelPricing.__table__)
history = cast(sa.Table, PriceHistory.__table__)


@dataclass(frozen=True)
class Resolution:
    """Which price a model id gets, and why."""

    provider: str
    model_id: str
    kind: str
    price: PriceInput | None = None
    """The current price (for ``MATCH``: the one the first request records)."""
    matched_id: str | None = None
    name: str | None = None
    source: str | None = None
    """``EXPLICIT``/``ALIAS``: the row's source."""
    price_from: str | None = None
    """``MATCH``: ``FROM_DATABASE`` or ``FROM_GENAI``."""
    steps: tuple[tuple[datetime, PriceInput], ...] = ()
    """``MATCH`` from genai-prices: the matched model's prices with their start."""
    reason: str = ""
    nearest: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.kind in USABLE

    def explanation(self) -> str:
        """One sentence for admins (``pricing resolve``)."""
        who = f"{self.provider}/{self.model_id}"
        if self.kind == EXPLICIT:
            return f"{who} has its own price row (source {self.source})."
        if self.kind == ALIAS:
            return (f"{who} is a resolved alias of {self.matched_id} (recorded from "
                    f"genai-prices' matching; source {self.source}).")
        if self.kind == MATCH:
            priced = ("its price in this database" if self.price_from == FROM_DATABASE
                      else "genai-prices' price for it")
            return (f"{who} has no price row; genai-prices matches it to {self.matched_id}, "
                    f"so the first request records it as an alias at {priced}.")
        return self.refusal()

    def refusal(self) -> str:
        """The ``UnknownModelError`` message: what is wrong, what an admin can do."""
        who = f"model {self.model_id!r} of provider {self.provider!r}"
        if self.kind == DELETED:
            return (f"{who} has no price, so it cannot be used: an admin deleted its price; "
                    f"price it again with `owui-token-tracking pricing resolve "
                    f"{self.model_id} --provider {self.provider} --apply` or `pricing add`")
        if self.kind == MATCHED_DELETED:
            return (f"{who} has no price, so it cannot be used: it is {self.matched_id!r}, "
                    "whose price an admin deleted; price that model again, or this id "
                    "with `owui-token-tracking pricing add`")
        near = (f"; nearest priced ids: {', '.join(self.nearest)}" if self.nearest
                else f"; no priced {self.provider} id is close")
        return (f"{who} has no price, so it cannot be used ({self.reason}){near}; an admin "
                "must price it first (owui-token-tracking pricing add)")


@dataclass(frozen=True)
class ProviderPrices:
    """One provider's price rows and every id it ever priced, read once."""

    provider: str
    rows: dict[str, ModelPricing]
    ever_priced: frozenset[str]
    credits_per_usd: Decimal


def load(session: Session, provider: str) -> ProviderPrices:
    """Read the price history's ids before the rows: on PostgreSQL each statement sees
    what was committed when it started, and a first request records a row and its
    history in one transaction. Read in this order, an id whose history is seen has its
    row seen too, unless an admin deleted it since; read the other way round, a
    resolution committed between the two reads looked like a deleted price and was
    refused."""
    ever = frozenset(session.scalars(sa.select(history.c.model_id).distinct()
                                     .where(history.c.provider == provider)))
    rows = session.scalars(sa.select(ModelPricing).where(ModelPricing.provider == provider))
    return ProviderPrices(provider, {r.id: r for r in rows}, ever, credits_per_usd(session))


def alias_name(matched_name: str, model_id: str, matched_id: str) -> str:
    return matched_name if model_id == matched_id else f"{matched_name} ({model_id})"


def decide(prices: ProviderPrices, model_id: str, now: datetime, *,
           ignore_own_deletion: bool = False) -> Resolution:
    """The rules of the module docstring over rows already read (no database access)."""
    provider = prices.provider
    row = prices.rows.get(model_id)
    if row is not None:
        kind = ALIAS if row.matched_model_id and row.source == GENAI_SOURCE else EXPLICIT
        return Resolution(provider, model_id, kind, PriceInput.from_row(row),
                          row.matched_model_id, row.name, row.source)
    if model_id in prices.ever_priced and not ignore_own_deletion:
        return Resolution(provider, model_id, DELETED)
    found = match_model(provider, model_id)
    if isinstance(found, NoMatch):
        return _no_match(prices, model_id, found.reason)
    return _matched(prices, found, now)


def _no_match(prices: ProviderPrices, model_id: str, reason: str) -> Resolution:
    return Resolution(prices.provider, model_id, NO_MATCH, reason=reason,
                      nearest=tuple(nearest(model_id, prices.rows)))


def _matched(prices: ProviderPrices, found: Match, now: datetime) -> Resolution:
    provider, model_id, matched = prices.provider, found.model_id, found.matched_id
    canonical = prices.rows.get(matched)
    if canonical is not None:
        return Resolution(provider, model_id, MATCH, PriceInput.from_row(canonical), matched,
                          alias_name(canonical.name or matched, model_id, matched),
                          price_from=FROM_DATABASE)
    if matched in prices.ever_priced:
        return Resolution(provider, model_id, MATCHED_DELETED, matched_id=matched)
    steps = tuple(found.price_steps(prices.credits_per_usd))
    current = [price for start, price in steps if start <= now]
    if not current:
        return _no_match(prices, model_id, f"genai-prices has no price in force for "
                         f"{matched!r}")
    return Resolution(provider, model_id, MATCH, current[-1], matched,
                      alias_name(found.name, model_id, matched), price_from=FROM_GENAI,
                      steps=steps)


def explain(session: Session, provider: str, model_id: str, now: datetime) -> Resolution:
    """Which price ``model_id`` of ``provider`` gets and why; writes nothing."""
    return decide(load(session, provider), model_id, now)


def usable_ids(session: Session, provider: str, model_ids: Iterable[str], now: datetime
               ) -> dict[str, Resolution]:
    """Of ``model_ids``, those that have or would get a price; writes nothing."""
    prices = load(session, provider)
    found = {model_id: decide(prices, model_id, now) for model_id in model_ids}
    return {model_id: res for model_id, res in found.items() if res.usable}


def record(session: Session, res: Resolution, now: datetime) -> None:
    """Write a ``MATCH`` as a price row and its history, unless already written.

    Concurrent first requests may all call this: each insert does nothing on conflict.
    """
    assert res.kind == MATCH and res.price is not None and res.matched_id is not None
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    session.execute(insert(catalogue).values(
        provider=res.provider, id=res.model_id, name=res.name, source=GENAI_SOURCE,
        updated_at=now, matched_model_id=res.matched_id, **res.price.as_columns(),
    ).on_conflict_do_nothing(index_elements=["provider", "id"]))
    keys = ["provider", "model_id", "effective_from"]
    if res.price_from == FROM_DATABASE:
        rate_cols = list(PriceInput.__dataclass_fields__)
        copied = sa.select(
            history.c.provider, sa.literal(res.model_id, history.c.model_id.type),
            history.c.effective_from, sa.literal(GENAI_SOURCE, history.c.source.type),
            *[history.c[c] for c in rate_cols],
        ).where(history.c.provider == res.provider, history.c.model_id == res.matched_id)
        session.execute(insert(history).from_select(
            [*keys, "source", *rate_cols], copied).on_conflict_do_nothing(index_elements=keys))
    else:
        for start, price in res.steps:
            session.execute(insert(history).values(
                provider=res.provider, model_id=res.model_id, effective_from=start,
                source=GENAI_SOURCE, **price.as_columns(),
            ).on_conflict_do_nothing(index_elements=keys))


def resolve_row(session: Session, provider: str, model_id: str, now: datetime
                ) -> ModelPricing | None:
    """The id's price row, recording its resolution first if genai-prices matches it;
    None if it gets no price (0.1.10's ``get_models``, which raises nothing)."""
    res = explain(session, provider, model_id, now)
    if res.kind == MATCH:
        record(session, res, now)
    return session.get(ModelPricing, (provider, model_id)) if res.usable else None


def resolve_anywhere(session: Session, model_id: str, now: datetime) -> list[ModelPricing]:
    """:func:`resolve_row` for every provider genai-prices' matching covers."""
    found = (resolve_row(session, provider, model_id, now) for provider in sorted(GENAI_IDS))
    return [r for r in found if r is not None]


def refusal_anywhere(session: Session, model_id: str) -> str:
    """Why a model id of no given provider has no price, naming the nearest priced ids."""
    ids = session.scalars(sa.select(ModelPricing.id).distinct())
    near = nearest(model_id, ids)
    return (f"model {model_id!r} has no price, and genai-prices matches it to no model of "
            f"{', '.join(sorted(GENAI_IDS))}, so it cannot be used"
            + (f"; nearest priced ids: {', '.join(near)}" if near else ""))


class _Misses:
    """Refusals remembered per engine for ``MISS_TTL`` (request time), bounded."""

    def __init__(self) -> None:
        self._by_engine: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str],
                                                                tuple[datetime, str]]]
        self._by_engine = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, engine: Engine, key: tuple[str, str], now: datetime) -> str | None:
        with self._lock:
            hit = self._by_engine.get(engine, {}).get(key)
        if hit is None or not hit[0] <= now < hit[0] + MISS_TTL:
            return None
        return hit[1]

    def add(self, engine: Engine, key: tuple[str, str], now: datetime, message: str) -> None:
        with self._lock:
            misses = self._by_engine.setdefault(engine, {})
            misses.pop(key, None)
            if len(misses) >= MISS_CACHE_SIZE:
                misses.pop(next(iter(misses)))
            misses[key] = (now, message)

    def clear(self) -> None:
        with self._lock:
            self._by_engine.clear()


misses = _Misses()


def resolve_price(session: Session, provider: str, model_id: str, now: datetime) -> Price:
    """The price of a model id without a price in force: resolved, recorded once, or
    ``UnknownModelError`` (see the module docstring)."""
    engine = session.get_bind().engine
    key = (provider, model_id)
    remembered = misses.get(engine, key, now)
    if remembered is not None:
        raise UnknownModelError(remembered)
    res = explain(session, provider, model_id, now)
    if not res.usable:
        message = res.refusal()
        misses.add(engine, key, now, message)
        raise UnknownModelError(message)
    if res.kind == MATCH:
        record(session, res, now)
    price = price_at(session, provider, model_id, now)
    if price is None:
        raise UnknownModelError(
            f"model {model_id!r} of provider {provider!r} has no price in force at "
            f"{now.isoformat()}, so it cannot be used; see `owui-token-tracking pricing "
            "history`")
    return price
