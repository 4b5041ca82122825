"""Usage reports: sums by each dimension and raw ledger rows over a half-open range."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from openwebui_token_tracking.accountant import Accountant
from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.errors import InvalidInputError
from openwebui_token_tracking.storage import groups, prices, reports, sponsors
from openwebui_token_tracking.storage.prices import PriceInput

SINCE = datetime(2026, 11, 27, tzinfo=UTC)
UNTIL = datetime(2026, 11, 29, tzinfo=UTC)


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def price(inp: int, out: int) -> PriceInput:
    return PriceInput(input_cost_credits=inp, per_input_tokens=1_000_000,
                      output_cost_credits=out, per_output_tokens=1_000_000)


@pytest.fixture
def ledger(engine: Engine) -> Iterator[Session]:
    """Four charged requests in range (25 credits) and one before it."""
    with Session(engine) as s, s.begin():
        for provider, model, rate in (("openai", "gpt-x", price(3000, 12000)),
                                      ("anthropic", "claude-x", price(1000, 5000))):
            prices.set_price(s, provider=provider, model_id=model, name=model, price=rate,
                             now=datetime(2026, 9, 1, tzinfo=UTC))
        groups.create_group(s, "Physics", 10)
        groups.create_group(s, "Chem", 10)
        groups.add_member(s, "Physics", "u-alice")
        groups.add_member(s, "Chem", "u-alice")
        groups.add_member(s, "Chem", "u-bob")
        sponsors.create_allowance(s, name="Lab", sponsor_id="u-admin", models=["gpt-x"],
                                  total_credit_limit=100, daily_credit_limit=None, now=at(1, 0))
    acc = Accountant(engine)
    acc.record(user_id="u-alice", provider="openai", model_id="gpt-x", now=at(27, 10),
               usage=Usage(input_tokens=1000, output_tokens=1000))                    # 15
    acc.record(user_id="u-alice", provider="anthropic", model_id="claude-x", now=at(28, 9),
               usage=Usage(input_tokens=2000, cached_input_tokens=1000, output_tokens=500))
    acc.record(user_id="u-bob", provider="openai", model_id="gpt-x", now=at(28, 11),
               allowance_name="Lab", usage=Usage(input_tokens=100, output_tokens=100))  # 1.5
    acc.record(user_id="u-admin", provider="openai", model_id="gpt-x", now=at(28, 11),
               usage=Usage(input_tokens=1000, reasoning_tokens=0))                     # 3
    acc.record(user_id="u-bob", provider="openai", model_id="gpt-x",
               now=datetime(2026, 10, 1, tzinfo=UTC), usage=Usage(input_tokens=10**6))
    with Session(engine) as s, s.begin():
        yield s


def sums(session: Session, by: str, **kw: object) -> list[tuple[str, str | None, int, Decimal]]:
    rows = reports.usage_summary(session, since=SINCE, until=UNTIL, by=by, **kw)  # type: ignore
    return [(r.key, r.detail, r.requests, r.credits) for r in rows]


def test_total(ledger: Session) -> None:
    total = reports.usage_total(ledger, since=SINCE, until=UNTIL)
    assert (total.requests, total.credits) == (4, Decimal("25"))
    assert (total.input_tokens, total.cached_input_tokens, total.output_tokens) == (
        4100, 1000, 1600)
    assert total.total_tokens == 6700


def test_by_user(ledger: Session) -> None:
    assert sums(ledger, "user") == [("u-alice", "Alice", 2, Decimal("20.5")),
                                    ("u-admin", "Ada Admin", 1, Decimal("3")),
                                    ("u-bob", "Bob", 1, Decimal("1.5"))]


def test_by_model_and_provider(ledger: Session) -> None:
    assert sums(ledger, "model") == [("gpt-x", "openai", 3, Decimal("19.5")),
                                     ("claude-x", "anthropic", 1, Decimal("5.5"))]
    assert sums(ledger, "provider") == [("openai", None, 3, Decimal("19.5")),
                                        ("anthropic", None, 1, Decimal("5.5"))]


def test_by_group_counts_each_membership(ledger: Session) -> None:
    assert sums(ledger, "group") == [("Chem", None, 3, Decimal("22")),
                                     ("Physics", None, 2, Decimal("20.5")),
                                     (reports.NO_GROUP, None, 1, Decimal("3"))]


def test_by_allowance_and_deleted_allowance(ledger: Session, engine: Engine) -> None:
    lab = sponsors.get_allowance(ledger, name="Lab")
    assert sums(ledger, "allowance") == [(reports.BASE_ALLOWANCE, None, 3, Decimal("23.5")),
                                         ("Lab", str(lab.id), 1, Decimal("1.5"))]
    assert reports.allowance_spent(ledger, lab.id) == 1_500_000
    sponsors.delete_allowance(ledger, lab)
    assert sums(ledger, "allowance")[1] == (str(lab.id), "deleted allowance", 1,
                                            Decimal("1.5"))
    assert reports.allowance_spent(ledger, uuid.uuid4()) == 0


def test_by_utc_day(ledger: Session) -> None:
    assert sums(ledger, "day") == [("2026-11-27", None, 1, Decimal("15")),
                                   ("2026-11-28", None, 3, Decimal("10"))]


def test_user_filter_and_range_bounds(ledger: Session) -> None:
    assert sums(ledger, "model", user_id="u-bob") == [("gpt-x", "openai", 1, Decimal("1.5"))]
    # until is exclusive: a row exactly at until is not counted, one at since is
    exact = reports.usage_summary(ledger, since=at(27, 10), until=at(28, 11), by="user")
    assert {r.key for r in exact} == {"u-alice"}


def test_ledger_rows_and_paging(ledger: Session) -> None:
    rows = reports.ledger_rows(ledger, since=SINCE, until=UNTIL)
    assert [(r.user_id, r.created_at) for r in rows] == [
        ("u-alice", at(27, 10)), ("u-alice", at(28, 9)), ("u-bob", at(28, 11)),
        ("u-admin", at(28, 11))]
    assert rows[0].credits == Decimal("15") and rows[0].status == "completed"
    assert rows[2].sponsored_allowance_id is not None
    page = reports.ledger_rows(ledger, since=SINCE, until=UNTIL, offset=1, limit=2)
    assert [r.id for r in page] == [r.id for r in rows[1:3]]
    assert [r.id for r in reports.iter_ledger_rows(ledger, since=SINCE, until=UNTIL,
                                                  batch=2)] == [r.id for r in rows]
    assert reports.count_ledger_rows(ledger, since=SINCE, until=UNTIL, user_id="u-alice") == 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"by": "color"}, "cannot sum usage by 'color'"),
    ({"by": "user", "since": UNTIL, "until": SINCE}, "the range is empty"),
    ({"by": "user", "since": datetime(2026, 11, 1)}, "aware instant"),
])
def test_bad_arguments(engine: Engine, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"since": SINCE, "until": UNTIL, **kwargs}
    with Session(engine) as s, pytest.raises(InvalidInputError, match=message):
        reports.usage_summary(s, **args)  # type: ignore[arg-type]
    with Session(engine) as s, pytest.raises(InvalidInputError):
        reports.ledger_rows(s, since=SINCE, until=UNTIL, offset=-1)


def test_empty_range(engine: Engine) -> None:
    with Session(engine) as s:
        assert reports.usage_summary(s, since=SINCE, until=UNTIL, by="day") == []
        total = reports.usage_total(s, since=SINCE, until=UNTIL)
        assert (total.requests, total.charged_micro) == (0, 0)
        assert reports.ledger_rows(s, since=SINCE, until=SINCE + timedelta(days=1)) == []
