"""Which genai-prices model a provider's model id names, by genai-prices' own match rules.

Providers, Open WebUI's model lists and 0.1.10's pipes name models by dated snapshot
ids (``gpt-4o-2024-08-06``, ``claude-3-5-haiku-20241022``, ``gemini-2.0-flash-001``);
genai-prices prices canonical models (``gpt-4o``) and ships the rules that map those
ids to them (``DataSnapshot.find_provider_model``, what ``calc_price`` uses). This
module asks those rules for one provider at a time, over the data shipped inside the
installed package only: never the auto-updating snapshot, so nothing is fetched.

A match counts only if both ids pass :func:`price_data.is_chat_model` (so Google's
Vertex AI Claude entries, embedding, audio and image models never match) and the
matched model has per-token input and output prices. Deprecated models do match: a
provider that still serves a snapshot still bills it.

Nothing here touches the database; :mod:`.storage.aliases` records what matched.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from .price_data import PROVIDER_IDS, is_chat_model, price_steps, to_price_input
from .storage.prices import PriceInput

GENAI_IDS: dict[str, str] = {ours: theirs for theirs, ours in PROVIDER_IDS.items()}
"""Our provider id -> genai-prices' (``google_genai`` -> ``google``)."""

NEAREST = 3
"""How many nearest priced ids a refusal names."""


@dataclass(frozen=True)
class Match:
    """``model_id`` of ``provider`` is genai-prices' model ``matched_id``."""

    provider: str
    model_id: str
    matched_id: str
    name: str
    """genai-prices' name of the matched model."""
    model: Any
    """The ``genai_prices.types.ModelInfo`` (its prices and their start dates)."""

    def price_steps(self, credits_per_usd: Decimal) -> list[tuple[datetime, PriceInput]]:
        """Every price of the matched model with the instant it starts, in credits
        (genai-prices' price history; prices without per-token rates left out)."""
        steps = []
        for start, model_price in price_steps(self.model):
            converted = to_price_input(model_price, credits_per_usd)
            if converted is not None:
                steps.append((start, converted[0]))
        return steps


@dataclass(frozen=True)
class NoMatch:
    """Why genai-prices gives ``model_id`` of ``provider`` no price."""

    provider: str
    model_id: str
    reason: str


@cache
def _snapshot() -> Any:
    """genai-prices' matcher over the bundled data (``calc_price``'s own machinery)."""
    from genai_prices.data import providers  # the shipped data, never fetched
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False)


def supported(provider: str) -> bool:
    return provider in GENAI_IDS


def match_model(provider: str, model_id: str) -> Match | NoMatch:
    """The genai-prices model ``model_id`` names for our ``provider``, or why none."""
    genai = GENAI_IDS.get(provider)
    if genai is None:
        return NoMatch(provider, model_id, f"genai-prices matching covers only the providers "
                       f"{', '.join(sorted(GENAI_IDS))}")
    try:
        _, model = _snapshot().find_provider_model(model_id, None, genai, None)
    except LookupError:
        return NoMatch(provider, model_id,
                       f"genai-prices matches no {provider} model to {model_id!r}")
    matched: str = model.id
    if not is_chat_model(genai, matched) or not is_chat_model(genai, model_id.lower()):
        return NoMatch(provider, model_id, f"genai-prices matches it to {matched!r}, which "
                       "is not a chat model this package prices by itself")
    if not any(getattr(p, "input_mtok", None) is not None
               and getattr(p, "output_mtok", None) is not None for _, p in price_steps(model)):
        return NoMatch(provider, model_id, f"genai-prices matches it to {matched!r}, which "
                       "has no per-token input and output price")
    return Match(provider, model_id, matched, model.name or matched, model)


def nearest(model_id: str, candidates: Iterable[str], n: int = NEAREST) -> list[str]:
    """The ids among ``candidates`` closest to ``model_id`` (difflib, ignoring case)."""
    lowered = {c.lower(): c for c in sorted(set(candidates))}
    close = difflib.get_close_matches(model_id.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[c] for c in close]
