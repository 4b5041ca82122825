"""PostgreSQL: the gateway admits a one-limit request on its event loop
(``storage.async_admission``); anything else, and any failure there, goes to the worker
thread with the same reservation id. SQLite always admits in a worker thread."""

from __future__ import annotations

import sqlalchemy as sa
from gw_support import ledger, messages, reservations
from sqlalchemy.orm import Session

from openwebui_token_tracking.accountant import Accountant
from openwebui_token_tracking.storage.async_admission import AsyncAdmissions
from openwebui_token_tracking.storage.schema import BudgetCounter


def counter(engine) -> tuple[int, int]:
    with Session(engine) as s:
        row = s.execute(sa.select(BudgetCounter.spent_micro, BudgetCounter.reserved_micro)
                        .where(BudgetCounter.scope == "user",
                               BudgetCounter.subject == "u-alice")).one()
    return int(row[0]), int(row[1])


def threaded_admissions(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """The model ids of admissions made in a worker thread (``Accountant.admit``)."""
    seen: list[str] = []
    admit = Accountant.admit

    def counting(self, **kw):  # type: ignore[no-untyped-def]
        seen.append(kw["model_id"])
        return admit(self, **kw)
    monkeypatch.setattr(Accountant, "admit", counting)
    return seen


def ask(oai, stream: bool = True) -> None:
    answer = oai().chat.completions.create(model="gpt-4o-mini", messages=messages(),
                                           stream=stream)
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    else:
        assert answer.choices[0].message.content


def test_a_warm_request_is_admitted_on_the_event_loop_on_postgresql(
        oai, gw_engine, backend, monkeypatch):
    in_threads = threaded_admissions(monkeypatch)
    ask(oai)  # the window's first request creates the counter: in a worker thread
    assert len(in_threads) == 1
    ask(oai)
    ask(oai, stream=False)
    assert len(in_threads) == (1 if backend == "postgresql" else 3)
    rows = ledger(gw_engine)
    assert len(rows) == 3 and reservations(gw_engine) == 0
    assert counter(gw_engine) == (sum(r.charged_micro for r in rows), 0)


def test_a_lost_answer_on_the_loop_is_found_by_the_worker_thread(
        oai, gw_engine, backend, monkeypatch):
    """The admission statement ran on the loop but its answer never came: the worker
    thread, with the same reservation id, finds the reservation instead of holding the
    estimate a second time."""
    lost: list[str] = []
    real = AsyncAdmissions.admit

    async def answer_lost(self, **kw):  # type: ignore[no-untyped-def]
        admitted = await real(self, **kw)
        lost.append(kw["reservation_id"] if admitted else "")
        raise OSError("server closed the connection unexpectedly")
    monkeypatch.setattr(AsyncAdmissions, "admit", answer_lost)
    ask(oai)  # cold window: the worker thread creates the counter
    ask(oai)
    if backend == "postgresql":
        assert lost[-1]  # it was admitted on the loop, then its answer lost
    else:
        assert lost == []  # no admission on the loop: SQLite has no network to wait for
    rows = ledger(gw_engine)
    assert len(rows) == 2 and reservations(gw_engine) == 0
    assert counter(gw_engine) == (sum(r.charged_micro for r in rows), 0)


def test_settlements_run_on_the_event_loop_on_postgresql_and_record_alerts(
        oai, gw_engine, backend, monkeypatch):
    from openwebui_token_tracking.storage import settings_store
    from openwebui_token_tracking.storage.schema import AlertEvent

    with Session(gw_engine) as s, s.begin():
        settings_store.set_value(s, "alert_thresholds", "1")
    in_threads: list[str] = []
    settle = Accountant.settle

    def counting(self, reservation_id, *args, **kw):  # type: ignore[no-untyped-def]
        in_threads.append(reservation_id)
        return settle(self, reservation_id, *args, **kw)
    monkeypatch.setattr(Accountant, "settle", counting)
    for _ in range(2):
        oai().chat.completions.create(model="gpt-4o-mini", messages=messages(),
                                      max_tokens=16)
    rows = ledger(gw_engine)
    assert len(rows) == 2 and reservations(gw_engine) == 0
    assert len(in_threads) == (0 if backend == "postgresql" else 2)
    assert counter(gw_engine) == (sum(r.charged_micro for r in rows), 0)
    with Session(gw_engine) as s:  # the first charge crossed 1% of the allowance
        assert s.scalar(sa.select(sa.func.count()).select_from(AlertEvent)
                        .where(AlertEvent.subject == "u-alice")) == 1


def test_a_lost_settlement_answer_on_the_loop_charges_once(oai, gw_engine, backend,
                                                          monkeypatch):
    real = AsyncAdmissions.settle
    lost: list[object] = []

    async def answer_lost(self, *args, **kw):  # type: ignore[no-untyped-def]
        lost.append(await real(self, *args, **kw))
        raise OSError("server closed the connection unexpectedly")
    monkeypatch.setattr(AsyncAdmissions, "settle", answer_lost)
    ask(oai)
    ask(oai, stream=False)
    assert len(lost) == (2 if backend == "postgresql" else 0)
    assert all(done is not None for done in lost)  # charged on the loop, answer lost
    rows = ledger(gw_engine)
    assert len(rows) == 2 and reservations(gw_engine) == 0
    assert counter(gw_engine) == (sum(r.charged_micro for r in rows), 0)


def test_open_webui_groups_created_later_count_on_the_event_loop_too(
        oai, gw_engine, backend, monkeypatch):
    """The terms read on the loop follow Open WebUI's group tables as the worker thread
    does: created after the service started (and probed again), a linked group's
    allowance counts."""
    import openai
    import pytest

    from openwebui_token_tracking.storage import group_links, groups, settings_store
    from openwebui_token_tracking.storage.openwebui_access import group_member_table
    from openwebui_token_tracking.storage.openwebui_groups import forget_probes
    from openwebui_token_tracking.storage.openwebui_tables import group_table, openwebui_metadata

    def set_allowance(value: str) -> None:
        with Session(gw_engine) as s, s.begin():
            settings_store.set_value(s, "base_credit_allowance", value)
    ask(oai)  # warm: the counter exists, later admissions can run on the loop
    set_allowance("0")
    with pytest.raises(openai.RateLimitError):
        ask(oai)
    # the gateway's stand-in tables have group_member (for access grants), not group
    openwebui_metadata.create_all(gw_engine, tables=[group_table])
    with gw_engine.begin() as conn:
        conn.execute(sa.insert(group_table).values(id="staff", name="Staff", user_id="u-admin"))
        conn.execute(sa.insert(group_member_table).values(id="m1", group_id="staff",
                                                          user_id="u-alice"))
    forget_probes()  # as RECHECK_MISSING_S passing would
    with Session(gw_engine) as s, s.begin():
        groups.create_group(s, "Staff budget", 50)
        group_links.link_group(s, "Staff budget", "staff")
    in_threads = threaded_admissions(monkeypatch)
    ask(oai)  # admitted with the group's allowance, on the loop on PostgreSQL
    assert len(in_threads) == (0 if backend == "postgresql" else 1)
    assert len(ledger(gw_engine)) == 2 and reservations(gw_engine) == 0
