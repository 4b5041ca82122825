from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openwebui_token_tracking.accounting import Price, Usage, charge, is_free
from openwebui_token_tracking.accounting.money import (
    credits_to_micro,
    micro_to_credits,
    round_micro,
)
from openwebui_token_tracking.accounting.pricing import Rate, exact_cost, price_in_force

GPT = Price(input=Rate(1000, 1_000_000), output=Rate(4000, 1_000_000))


def test_thousand_requests_of_point_four_credits_charge_exactly_400():
    # 400 input tokens at 1000 credits per 1M tokens = 0.4 credits each.
    one = charge(Usage(input_tokens=400), GPT).micro_credits
    assert one == 400_000
    assert micro_to_credits(sum([one] * 1000)) == Decimal("400")


def test_every_token_kind_has_its_rate():
    price = Price(input=Rate(3000, 1_000_000), output=Rate(15000, 1_000_000),
                  cached_input=Rate(300, 1_000_000), cache_write=Rate(3750, 1_000_000))
    usage = Usage(input_tokens=1000, cached_input_tokens=10_000, cache_write_tokens=2000,
                  output_tokens=500, reasoning_tokens=100)
    # 3 + 3 + 7.5 + 9 credits
    assert charge(usage, price).micro_credits == 3_000_000 + 3_000_000 + 7_500_000 + 9_000_000


def test_cache_rates_default_to_the_input_rate():
    usage = Usage(cached_input_tokens=1000, cache_write_tokens=1000)
    assert charge(usage, GPT).micro_credits == charge(Usage(input_tokens=2000), GPT).micro_credits


def test_rounding_is_once_per_request_half_up():
    price = Price(input=Rate(1, 3_000_000), output=Rate(0, 1))  # 1/3 micro-credit per token
    assert charge(Usage(input_tokens=1), price).micro_credits == 0   # 0.333 -> 0
    assert charge(Usage(input_tokens=2), price).micro_credits == 1   # 0.667 -> 1
    half = Price(input=Rate(1, 2_000_000), output=Rate(0, 1))
    assert charge(Usage(input_tokens=1), half).micro_credits == 1    # 0.5 -> 1 (half up)


@given(st.integers(0, 10**9), st.integers(1, 10**9))
def test_round_micro_is_within_half(n, d):
    value = Fraction(n, d)
    assert abs(round_micro(value) - value) <= Fraction(1, 2)


rates = st.builds(Rate, st.integers(0, 100_000), st.integers(1, 10**7))
usages = st.builds(Usage, *[st.integers(0, 10**7)] * 5)


@given(rates, rates, usages)
def test_charge_is_exact_cost_rounded(inp, out, usage):
    price = Price(input=inp, output=out)
    exact = exact_cost(usage, price)
    assert abs(charge(usage, price).micro_credits - exact) <= Fraction(1, 2)


@given(rates, rates, usages, usages)
def test_charge_is_additive_up_to_one_rounding_per_request(inp, out, a, b):
    price = Price(input=inp, output=out)
    split = charge(a, price).micro_credits + charge(b, price).micro_credits
    assert abs(split - charge(a + b, price).micro_credits) <= 1


def test_free_means_every_rate_zero():
    assert is_free(Price(input=Rate(0, 1), output=Rate(0, 1)))
    assert not is_free(Price(input=Rate(0, 1), output=Rate(0, 1), cache_write=Rate(1, 10)))


def test_usage_refuses_negative_and_non_int():
    with pytest.raises(ValueError):
        Usage(input_tokens=-1)
    with pytest.raises(TypeError):
        Usage(output_tokens=1.5)  # type: ignore[arg-type]


def test_credits_to_micro_is_exact_and_strict():
    assert credits_to_micro("12.5") == 12_500_000
    assert credits_to_micro(3) == 3_000_000
    for bad in ["abc", "1e400000", "0.0000001", 0.1, "nan"]:
        with pytest.raises(ValueError):
            credits_to_micro(bad)  # type: ignore[arg-type]


def test_price_in_force_picks_latest_started():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    old = Price(input=Rate(1, 1), output=Rate(1, 1), effective_from=t0)
    new = Price(input=Rate(2, 1), output=Rate(2, 1), effective_from=t0 + timedelta(days=10))
    assert price_in_force([old, new], t0 + timedelta(days=5)) is old
    assert price_in_force([old, new], t0 + timedelta(days=10)) is new
    assert price_in_force([new], t0) is None
