"""Credit groups linked to Open WebUI groups, read at admission (SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from db_support import create_openwebui_groups
from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import (
    DailyTokenLimitExceededError,
    InvalidInputError,
    NotFoundError,
)
from openwebui_token_tracking.storage import (
    group_links,
    groups,
    prices,
    reports,
    settings_store,
)
from openwebui_token_tracking.storage.openwebui_groups import (
    GroupTables,
    find_openwebui_group,
    forget_probes,
    group_tables,
)
from openwebui_token_tracking.storage.prices import PriceInput

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# staff > research (a sub-group); students apart. bob is in research only.
OWUI_GROUPS = {"staff": None, "research": "staff", "students": None}
OWUI_MEMBERS = {"staff": ["u-alice"], "research": ["u-bob"], "students": ["u-alice"]}


def _setup(engine) -> Accountant:
    acct = Accountant(engine, clock=lambda: NOW)

    def work(s):
        settings_store.ensure_defaults(s)
        settings_store.set_value(s, "base_credit_allowance", "10")
        prices.set_price(s, provider="openai", model_id="gpt", name="GPT",
                         price=PriceInput(0, 1, 1000, 1_000_000), now=NOW - timedelta(days=1))
        groups.create_group(s, "Staff budget", 100)
        groups.create_group(s, "Student budget", 7)
    acct.run(work)
    return acct


@pytest.fixture
def acct(engine):
    create_openwebui_groups(engine, OWUI_GROUPS, OWUI_MEMBERS)
    return _setup(engine)


def limit_of(acct, user_id) -> Decimal:
    return acct.balance(user_id).limits[0].limit


def test_linked_members_get_the_group_allowance_at_admission(acct):
    assert limit_of(acct, "u-alice") == 10
    acct.run(lambda s: group_links.link_group(s, "Staff budget", "staff"))
    acct.run(lambda s: group_links.link_group(s, "student budget", "Students"))  # by name
    # alice: staff + students; bob: research, a sub-group of staff, inherits staff
    assert limit_of(acct, "u-alice") == 10 + 100 + 7
    assert limit_of(acct, "u-bob") == 10 + 100
    assert limit_of(acct, "u-admin") == 10
    # admission sees the same allowance: 110 credits fit bob's limit, 111 do not
    adm = acct.admit(user_id="u-bob", provider="openai", model_id="gpt",
                     estimate=Usage(output_tokens=110_000))
    acct.release(adm.reservation_id)
    with pytest.raises(DailyTokenLimitExceededError):
        acct.admit(user_id="u-bob", provider="openai", model_id="gpt",
                   estimate=Usage(output_tokens=111_000))


def test_membership_is_read_live_and_counted_once(acct, engine):
    acct.run(lambda s: group_links.link_group(s, "Staff budget", "staff"))
    acct.run(lambda s: groups.add_member(s, "Staff budget", "u-alice"))  # also direct
    assert limit_of(acct, "u-alice") == 110  # once, not twice
    with engine.begin() as conn:  # an admin adds the admin to research in Open WebUI
        conn.exec_driver_sql("INSERT INTO group_member (id, group_id, user_id) "
                             "VALUES ('m-x', 'research', 'u-admin')")
    assert limit_of(acct, "u-admin") == 110
    assert acct.run(lambda s: sorted(g.name for g in groups.groups_of(s, "u-admin"))) == \
        ["Staff budget"]
    assert acct.run(lambda s: groups.allowances_by_user(s)) == \
        {"u-alice": 100, "u-bob": 100, "u-admin": 100}


def test_a_deleted_openwebui_group_grants_nothing_and_is_flagged(acct, engine):
    acct.run(lambda s: group_links.link_group(s, "Staff budget", "research"))
    assert limit_of(acct, "u-bob") == 110
    with engine.begin() as conn:  # Open WebUI deletes the group (members may linger)
        conn.exec_driver_sql("""DELETE FROM "group" WHERE id = 'research'""")
    assert limit_of(acct, "u-bob") == 10
    acct.admit(user_id="u-bob", provider="openai", model_id="gpt",
               estimate=Usage(output_tokens=1000))
    [(name, link)] = acct.run(group_links.links).items()
    assert (name, link.openwebui_group_id, link.broken, link.members) == \
        ("Staff budget", "research", True, 0)


def test_link_errors_and_unlink(acct):
    with pytest.raises(NotFoundError, match="no Open WebUI group"):
        acct.run(lambda s: group_links.link_group(s, "Staff budget", "nope"))
    with pytest.raises(NotFoundError, match="credit group"):
        acct.run(lambda s: group_links.link_group(s, "nope", "staff"))
    acct.run(lambda s: group_links.link_group(s, "Staff budget", "staff"))
    links = acct.run(group_links.links)
    assert (links["Staff budget"].name, links["Staff budget"].members) == ("Staff", 2)
    acct.run(lambda s: group_links.unlink_group(s, "Staff budget"))
    assert limit_of(acct, "u-alice") == 10
    with pytest.raises(NotFoundError, match="not linked"):
        acct.run(lambda s: group_links.unlink_group(s, "Staff budget"))


def test_ambiguous_names_need_the_id(engine):
    create_openwebui_groups(engine, {"a1": None, "a2": None}, {})
    with engine.begin() as conn:
        conn.exec_driver_sql("""UPDATE "group" SET name = 'Team'""")
    acct = _setup(engine)
    with pytest.raises(InvalidInputError, match="2 Open WebUI groups are named 'team'"):
        acct.run(lambda s: find_openwebui_group(s, "team"))
    assert acct.run(lambda s: find_openwebui_group(s, "a2")).id == "a2"


def test_without_openwebui_group_tables_everything_still_works(engine):
    forget_probes()
    acct = _setup(engine)
    assert acct.run(group_tables) is GroupTables.NONE
    acct.run(lambda s: groups.add_member(s, "Staff budget", "u-alice"))
    assert limit_of(acct, "u-alice") == 110
    with pytest.raises(InvalidInputError, match="no Open WebUI group tables"):
        acct.run(lambda s: group_links.link_group(s, "Staff budget", "staff"))
    assert acct.run(group_links.links) == {}


def test_openwebui_before_sub_groups(engine):
    create_openwebui_groups(engine, {"staff": None, "research": None},
                            {"staff": ["u-alice"], "research": ["u-bob"]}, nested=False)
    acct = _setup(engine)
    assert acct.run(group_tables) is GroupTables.FLAT
    acct.run(lambda s: group_links.link_group(s, "Staff budget", "staff"))
    assert (limit_of(acct, "u-alice"), limit_of(acct, "u-bob")) == (110, 10)


def test_cycles_in_openwebui_parents_terminate(acct, engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("""UPDATE "group" SET parent_group_id = 'research'
                                WHERE id = 'staff'""")
    acct.run(lambda s: group_links.link_group(s, "Staff budget", "research"))
    assert limit_of(acct, "u-alice") == 110  # staff -> research -> staff ...
    assert acct.run(lambda s: s.scalar(sa.select(sa.literal(1)))) == 1


def test_reports_by_group_count_linked_members(acct):
    acct.run(lambda s: group_links.link_group(s, "Staff budget", "staff"))
    acct.run(lambda s: groups.add_member(s, "Student budget", "u-bob"))
    for user in ("u-alice", "u-bob", "u-admin"):
        acct.record(user_id=user, provider="openai", model_id="gpt",
                    usage=Usage(output_tokens=1000))
    rows = acct.run(lambda s: reports.usage_summary(
        s, since=NOW - timedelta(days=1), until=NOW + timedelta(days=1), by="group"))
    assert {r.key: r.requests for r in rows} == {"Staff budget": 2, "Student budget": 1,
                                                  "(no group)": 1}
