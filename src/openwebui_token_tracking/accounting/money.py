"""Exact money: credits are stored and summed as integer micro-credits.

One credit is ``MICRO`` (1,000,000) micro-credits. Every charge is rounded exactly once,
when it is computed for a request, to the nearest micro-credit with halves rounded up
(``ROUND_HALF_UP``). Sums of stored charges are then exact integers, so 1,000 requests of
0.4 credits are 400 credits, never 399.99999.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

MICRO = 1_000_000
MAX_CREDITS = 10**12
"""Amounts beyond a trillion credits are refused as input errors (they fit in 64 bits)."""


def round_micro(amount: Fraction) -> int:
    """Round an exact amount of micro-credits to an integer, halves up."""
    if amount < 0:
        return -round_micro(-amount)
    whole, rest = divmod(amount.numerator, amount.denominator)
    return whole + (1 if 2 * rest >= amount.denominator else 0)


def micro_to_credits(micro: int) -> Decimal:
    """Integer micro-credits as an exact ``Decimal`` of credits."""
    return (Decimal(micro) / MICRO).quantize(Decimal("0.000001"))


def credits_to_micro(credits: int | str | Decimal) -> int:
    """Credits (int, decimal string or ``Decimal``) as integer micro-credits.

    Raises ``ValueError`` for anything not a finite number with at most six decimals.
    """
    if isinstance(credits, bool) or isinstance(credits, float):
        raise ValueError(f"credits must be an int or a decimal string, not {credits!r}")
    try:
        value = Decimal(credits)
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not a number of credits: {credits!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite number of credits: {credits!r}")
    if abs(value) > MAX_CREDITS:
        raise ValueError(f"credits must be at most {MAX_CREDITS:,}: {credits!r}")
    micro = value * MICRO
    if micro != micro.to_integral_value():
        raise ValueError(f"credits have at most 6 decimals: {credits!r}")
    return int(micro)


def format_credits(micro: int) -> str:
    """Human form: ``12.5`` for 12,500,000 micro-credits, no trailing zeros."""
    text = format(micro_to_credits(micro).normalize(), "f")
    return text


def quantize_display(value: Decimal, places: int = 2) -> Decimal:
    """Round a credit amount for display only (never for storage)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
