"""Prices with an effective instant, and the pure charge of a usage at a price."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from .money import MICRO, round_micro
from .usage import Usage


@dataclass(frozen=True, slots=True)
class Rate:
    """``cost_credits`` credits per ``per_tokens`` tokens (0.1.10's column pair)."""

    cost_credits: int
    per_tokens: int

    def __post_init__(self) -> None:
        if isinstance(self.cost_credits, bool) or not isinstance(self.cost_credits, int):
            raise TypeError(f"cost_credits must be an int, got {self.cost_credits!r}")
        if isinstance(self.per_tokens, bool) or not isinstance(self.per_tokens, int):
            raise TypeError(f"per_tokens must be an int, got {self.per_tokens!r}")
        if self.cost_credits < 0:
            raise ValueError(f"cost_credits must not be negative, got {self.cost_credits}")
        if self.per_tokens <= 0:
            raise ValueError(f"per_tokens must be positive, got {self.per_tokens}")

    @property
    def per_token(self) -> Fraction:
        """Exact credits per single token."""
        return Fraction(self.cost_credits, self.per_tokens)


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price, in force from ``effective_from`` (aware UTC) on.

    Cached-input and cache-write rates default to the input rate; reasoning tokens
    are billed at the output rate.
    """

    input: Rate
    output: Rate
    cached_input: Rate | None = None
    cache_write: Rate | None = None
    effective_from: datetime | None = None

    @property
    def cached_input_rate(self) -> Rate:
        return self.cached_input or self.input

    @property
    def cache_write_rate(self) -> Rate:
        return self.cache_write or self.input


@dataclass(frozen=True, slots=True)
class Charge:
    """The charge of one request: exact micro-credits, rounded once (half up)."""

    micro_credits: int


def exact_cost(usage: Usage, price: Price) -> Fraction:
    """Unrounded cost in micro-credits."""
    total = (
        usage.input_tokens * price.input.per_token
        + usage.cached_input_tokens * price.cached_input_rate.per_token
        + usage.cache_write_tokens * price.cache_write_rate.per_token
        + (usage.output_tokens + usage.reasoning_tokens) * price.output.per_token
    )
    return total * MICRO


def charge(usage: Usage, price: Price) -> Charge:
    """Charge ``usage`` at ``price``: sum over token kinds of tokens x rate, rounded once."""
    return Charge(round_micro(exact_cost(usage, price)))


def is_free(price: Price) -> bool:
    """A model is free when every one of its rates is zero."""
    rates = [price.input, price.output, price.cached_input_rate, price.cache_write_rate]
    return all(r.cost_credits == 0 for r in rates)


def price_in_force(prices: list[Price], at: datetime) -> Price | None:
    """The price whose ``effective_from`` is the latest one not after ``at``.

    A price without ``effective_from`` is in force since forever.
    """
    candidates = [p for p in prices if p.effective_from is None or p.effective_from <= at]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p.effective_from is not None, p.effective_from or at))
