from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openwebui_token_tracking.accounting import Period, admission_decision, window_for

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe",
         "America/Santiago", "Pacific/Chatham", "America/St_Johns"]


def test_day_window_is_local_calendar_day():
    now = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)  # 22:30 on the 27th in New York
    w = window_for(now, "day", ZoneInfo("America/New_York"))
    assert w.start == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    assert w.end == datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


def test_dst_day_is_23_hours_and_reset_is_exact():
    tz = ZoneInfo("Europe/Berlin")
    w = window_for(datetime(2026, 3, 29, 12, tzinfo=UTC), "day", tz)
    assert w.end - w.start == timedelta(hours=23)
    assert w.end.astimezone(tz).hour == 0


def test_week_starts_monday_and_month_on_the_first():
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)  # a Saturday
    week = window_for(now, Period.WEEK, ZoneInfo("UTC"))
    assert week.start == datetime(2026, 11, 23, tzinfo=UTC)
    assert week.end == datetime(2026, 11, 30, tzinfo=UTC)
    month = window_for(now, Period.MONTH, ZoneInfo("UTC"))
    assert (month.start, month.end) == (datetime(2026, 11, 1, tzinfo=UTC),
                                        datetime(2026, 12, 1, tzinfo=UTC))


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        window_for(datetime(2026, 1, 1), "day", ZoneInfo("UTC"))


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)),
       st.sampled_from(ZONES), st.sampled_from(list(Period)))
def test_window_contains_now_and_windows_tile(naive, zone, period):
    now = naive.replace(tzinfo=UTC)
    tz = ZoneInfo(zone)
    w = window_for(now, period, tz)
    assert w.start <= now < w.end
    nxt = window_for(w.end, period, tz)
    assert nxt.start == w.end  # no gap, no overlap
    local_start = w.start.astimezone(tz)
    if period is Period.MONTH:
        assert local_start.day == 1
    if period is Period.WEEK:
        assert local_start.weekday() == 0


def test_admission_rule():
    assert admission_decision(spent=5, reserved=3, estimate=2, limit=10).admitted
    assert not admission_decision(spent=5, reserved=3, estimate=3, limit=10).admitted
    assert admission_decision(spent=50, reserved=0, estimate=0, limit=10).admitted  # free
    assert admission_decision(spent=50, reserved=0, estimate=9, limit=None).admitted
