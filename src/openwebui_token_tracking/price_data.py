"""Default model prices from the bundled ``genai-prices`` data, in whole credits.

genai-prices gives US dollars per million tokens (``Decimal``). We store 0.1.10's
columns: an integer ``cost_credits`` per ``per_tokens`` tokens. A price converts at the
``credits_per_usd`` setting, and ``per_tokens`` is the smallest power of ten, at least
1,000,000, that makes the cost an exact integer (0.075 USD/MTok at 1000 credits/USD is
75 credits per 1,000,000 tokens; 0.01875 USD/MTok is 1875 credits per 100,000,000).
Nothing is ever rounded.

Only the data shipped inside the installed package is read (``genai_prices.data``):
never the auto-updating snapshot, so nothing is fetched over the network.

Provider ids are 0.1.10's (``resources/models.json``), mapped from genai-prices' ids:

============  ==============
genai-prices  ours
============  ==============
openai        openai
anthropic     anthropic
google        google_genai
mistral       mistral
============  ==============

Which models: the current chat models of those providers, meaning models priced per
input *and* output token, not flagged deprecated, whose id does not name an
embedding, speech, image, realtime, moderation, OCR or legacy completion model (see
:data:`NON_CHAT_MARKERS` and :data:`LEGACY_IDS`); for Google only ``gemini-*`` (its
Claude and Gemma entries are Vertex AI resellers). Where genai-prices has a tiered
price (a surcharge over a prompt-length threshold), the base tier is used.
``cache_write`` is the 5-minute cache write rate (Anthropic's 1-hour rate is not
modelled). A model genai-prices does not know is usable only once an admin prices it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from fractions import Fraction

from .errors import InvalidInputError
from .storage.prices import EPOCH, GENAI_SOURCE, PriceInput

PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google_genai",
    "mistral": "mistral",
}
"""genai-prices provider id -> our provider id."""

NON_CHAT_MARKERS = (
    "embed", "tts", "transcribe", "whisper", "image", "audio", "realtime", "live",
    "moderation", "ocr", "davinci", "babbage", "curie", "-search", "deep-research",
    "computer-use", "robotics", "ft:", ".ft-", ":",
)
"""A model id containing one of these is not a chat model we price by default."""

LEGACY_IDS = frozenset({"ada", "claude-v1", "claude-2"})
"""Completion-era models genai-prices still lists without a deprecation flag."""

GOOGLE_PREFIX = "gemini"
MIN_PER_TOKENS = 1_000_000
MAX_PER_TOKENS = 10**18  # the columns are 64-bit integers

SOURCE = GENAI_SOURCE
"""``source`` of a price row written from this data (an admin's is ``manual``)."""


@dataclass(frozen=True)
class CatalogueEntry:
    """A default price in credits, ready for ``storage.prices.set_price``."""

    provider: str
    model_id: str
    name: str
    price: PriceInput
    tiered: bool = False
    """genai-prices has a long-prompt surcharge tier that the base rate here ignores."""
    matched_model_id: str | None = None
    """Set for a resolved alias (``gpt-4o-2024-08-06``): the model it matched."""


def data_version() -> str:
    """The installed genai-prices version the defaults come from."""
    from genai_prices import __version__

    return __version__


def to_rate(usd_per_mtok: Decimal, credits_per_usd: Decimal) -> tuple[int, int]:
    """``(cost_credits, per_tokens)`` equal, exactly, to ``usd_per_mtok`` at the rate.

    ``per_tokens`` is the smallest power of ten >= 1,000,000 making the cost an integer.
    """
    if not usd_per_mtok.is_finite() or usd_per_mtok < 0:
        raise InvalidInputError(f"not a usable price: {usd_per_mtok} USD per 1M tokens")
    if not credits_per_usd.is_finite() or credits_per_usd <= 0:
        raise InvalidInputError(f"credits_per_usd must be positive, got {credits_per_usd}")
    credits_per_mtok = Fraction(usd_per_mtok) * Fraction(credits_per_usd)
    per_tokens = MIN_PER_TOKENS
    while True:
        cost = credits_per_mtok * per_tokens / MIN_PER_TOKENS
        if cost.denominator == 1:
            return int(cost), per_tokens
        if per_tokens >= MAX_PER_TOKENS:
            raise InvalidInputError(
                f"{usd_per_mtok} USD per 1M tokens at {credits_per_usd} credits per USD "
                "has no exact whole-credit rate; choose a rounder credits_per_usd"
            )
        per_tokens *= 10


def is_chat_model(genai_provider: str, model_id: str) -> bool:
    """The default-model rule of this module (see the module docstring)."""
    if genai_provider == "google" and not model_id.startswith(GOOGLE_PREFIX):
        return False
    if model_id in LEGACY_IDS:
        return False
    return not any(marker in model_id for marker in NON_CHAT_MARKERS)


def _prices_at(model: object, at: datetime) -> object:
    """The standard (not request-variant) ``ModelPrice`` in force at ``at``.

    Later conditional prices take precedence, as in genai-prices; a time-of-day price
    (off-peak discount) never applies, as a stored price cannot vary by hour.
    """
    from genai_prices.types import ModelPrice, StartDateConstraint

    prices = model.prices  # type: ignore[attr-defined]
    if isinstance(prices, ModelPrice):
        return prices
    for conditional in reversed(prices):
        constraint = conditional.constraint
        if constraint is None or (isinstance(constraint, StartDateConstraint)
                                  and constraint.active(at)):
            return conditional.prices
    return prices[0].prices


def price_steps(model: object) -> list[tuple[datetime, object]]:
    """Each standard ``ModelPrice`` of a genai-prices model with the instant it starts.

    The first price applies since the epoch (genai-prices uses it when no later one is
    active); each later one from the UTC midnight of its start date. Time-of-day prices
    are left out, as in :func:`_prices_at`. Sorted by start, one price per start.
    """
    from genai_prices.types import ModelPrice, StartDateConstraint

    prices = model.prices  # type: ignore[attr-defined]
    if isinstance(prices, ModelPrice):
        return [(EPOCH, prices)]
    steps: dict[datetime, object] = {EPOCH: prices[0].prices}
    for conditional in prices[1:]:
        constraint = conditional.constraint
        if isinstance(constraint, StartDateConstraint):
            start = datetime.combine(constraint.start_date, time(), tzinfo=UTC)
            steps[start] = conditional.prices
    return sorted(steps.items(), key=lambda step: step[0])


def _base(value: object) -> tuple[Decimal | None, bool]:
    """A price as a plain ``Decimal`` (base tier of a tiered price), and if it was tiered."""
    from genai_prices.types import TieredPrices

    if value is None:
        return None, False
    if isinstance(value, TieredPrices):
        return value.base, True
    assert isinstance(value, Decimal)
    return value, False


def to_price_input(model_price: object, credits_per_usd: Decimal
                   ) -> tuple[PriceInput, bool] | None:
    """A genai-prices ``ModelPrice`` in credits, and whether it was tiered.

    None when it has no per-token input or output price (an image or audio model).
    """
    rates: dict[str, tuple[int, int] | None] = {}
    tiered = False
    for kind, key in (("input", "input_mtok"), ("output", "output_mtok"),
                      ("cached_input", "cache_read_mtok"), ("cache_write", "cache_write_mtok")):
        usd, was_tiered = _base(getattr(model_price, key, None))
        tiered = tiered or was_tiered
        rates[kind] = None if usd is None else to_rate(usd, credits_per_usd)
    inp, out, cached, write = (rates["input"], rates["output"], rates["cached_input"],
                               rates["cache_write"])
    if inp is None or out is None:
        return None
    return PriceInput(
        input_cost_credits=inp[0], per_input_tokens=inp[1],
        output_cost_credits=out[0], per_output_tokens=out[1],
        cached_input_cost_credits=cached[0] if cached else None,
        per_cached_input_tokens=cached[1] if cached else None,
        cache_write_cost_credits=write[0] if write else None,
        per_cache_write_tokens=write[1] if write else None,
    ), tiered


def entry_for(genai_provider: str, model: object, at: datetime,
              credits_per_usd: Decimal) -> CatalogueEntry | None:
    """The price in force at ``at`` of one genai-prices model, in credits."""
    converted = to_price_input(_prices_at(model, at), credits_per_usd)
    if converted is None:
        return None
    price, tiered = converted
    model_id: str = model.id  # type: ignore[attr-defined]
    name: str = model.name or model_id  # type: ignore[attr-defined]
    return CatalogueEntry(PROVIDER_IDS[genai_provider], model_id, name, price, tiered)


def default_catalogue(*, credits_per_usd: Decimal, at: datetime,
                      providers: Iterable[str] | None = None) -> list[CatalogueEntry]:
    """Default prices of the current chat models, in force at ``at``, sorted.

    ``providers`` filters by *our* provider ids (``google_genai``, not ``google``).
    """
    from genai_prices.data import providers as bundled  # the shipped data, never fetched

    wanted = set(PROVIDER_IDS.values()) if providers is None else set(providers)
    unknown = wanted - set(PROVIDER_IDS.values())
    if unknown:
        raise InvalidInputError(
            f"no default prices for provider(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(PROVIDER_IDS.values()))}"
        )
    entries = []
    for provider in bundled:
        ours = PROVIDER_IDS.get(provider.id)
        if ours is None or ours not in wanted:
            continue
        for model in provider.models:
            if model.deprecated or not is_chat_model(provider.id, model.id):
                continue
            entry = entry_for(provider.id, model, at, credits_per_usd)
            if entry is not None:
                entries.append(entry)
    return sorted(entries, key=lambda e: (e.provider, e.model_id))


# -- sync plan ----------------------------------------------------------------------------

ADD, CHANGE, KEEP_MANUAL, KEEP_DELETED = "add", "change", "keep-manual", "keep-deleted"
ALIAS = "alias"


@dataclass(frozen=True)
class CurrentPrice:
    """A stored price as sync sees it."""

    price: PriceInput
    source: str


@dataclass(frozen=True)
class SyncChange:
    """One difference between the stored prices and genai-prices.

    ``action`` is ``add`` (new model), ``change`` (price from genai-prices moved),
    ``keep-manual`` (an admin set this price by hand, so sync leaves it alone) or
    ``keep-deleted`` (an admin deleted the model, so sync does not bring it back) or
    ``alias`` (a resolved alias whose price is already its matched model's). A ``change``
    of a resolved alias carries the matched id in ``entry.matched_model_id``.
    """

    action: str
    entry: CatalogueEntry
    old: PriceInput | None = None

    @property
    def applies(self) -> bool:
        return self.action in (ADD, CHANGE)


def plan_sync(current: Mapping[tuple[str, str], CurrentPrice],
              catalogue: Iterable[CatalogueEntry], *,
              deleted: Collection[tuple[str, str]] = (), only_new: bool = False
              ) -> list[SyncChange]:
    """What a sync would do: pure, from the stored prices keyed by (provider, model id).

    ``deleted`` are models that were priced once and deleted since (they keep a price
    history). ``only_new`` plans additions only (``init``: never touch a stored price).
    """
    changes = []
    for entry in catalogue:
        key = (entry.provider, entry.model_id)
        stored = current.get(key)
        if stored is None and key in deleted:
            if not only_new:
                changes.append(SyncChange(KEEP_DELETED, entry))
        elif stored is None:
            changes.append(SyncChange(ADD, entry))
        elif only_new or stored.price == entry.price:
            continue
        elif stored.source == SOURCE:
            changes.append(SyncChange(CHANGE, entry, stored.price))
        else:
            changes.append(SyncChange(KEEP_MANUAL, entry, stored.price))
    return changes
