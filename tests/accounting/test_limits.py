"""How limits combine, the minute window and the rate rule (pure, property-tested)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openwebui_token_tracking.accounting.limits import (
    effective_caps,
    minute_window,
    most_generous,
    rate_admits,
)

limits = st.none() | st.integers(min_value=1, max_value=10**6)


def test_an_override_replaces_the_default_and_the_largest_wins():
    assert most_generous(60, []) == 60
    assert most_generous(None, [None, None]) is None
    assert most_generous(60, [None, 10]) == 10  # a group may lower the default
    assert most_generous(None, [10, 30, None]) == 30


@given(default=limits, overrides=st.lists(limits, max_size=5))
def test_most_generous_is_an_override_or_the_default(default, overrides):
    result = most_generous(default, overrides)
    given_ = [o for o in overrides if o is not None]
    assert result == (max(given_) if given_ else default)


def test_group_caps_replace_the_base_cap_per_target():
    base = {"o1": 200, "gpt": 50}
    assert effective_caps(base, []) == base
    assert effective_caps(base, [{"o1": 20}, {"o1": 500, "claude": 5}]) == \
        {"o1": 500, "gpt": 50, "claude": 5}
    assert effective_caps(base, [{"o1": 20}]) == {"o1": 20, "gpt": 50}


def test_minute_window():
    w = minute_window(datetime(2026, 11, 28, 13, 59, 59, 999, tzinfo=timezone(timedelta(hours=1))))
    assert (w.start, w.end) == (datetime(2026, 11, 28, 12, 59, tzinfo=UTC),
                                datetime(2026, 11, 28, 13, 0, tzinfo=UTC))
    assert w.key == int(w.start.timestamp())
    with pytest.raises(ValueError, match="aware"):
        minute_window(datetime(2026, 11, 28))


@given(requests=st.integers(0, 100), tokens=st.integers(0, 10**5), stale=st.booleans(),
       estimate=st.integers(0, 10**5), rpm=limits, tpm=limits)
def test_rate_rule(requests, tokens, stale, estimate, rpm, tpm):
    ok = rate_admits(requests=requests, tokens=tokens, stale=stale, estimate_tokens=estimate,
                     requests_per_minute=rpm, tokens_per_minute=tpm)
    used_r, used_t = (0, 0) if stale else (requests, tokens)
    assert ok == ((rpm is None or used_r < rpm) and (tpm is None or used_t + estimate <= tpm))
