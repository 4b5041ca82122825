"""Delivering alerts to a real local HTTP receiver and SMTP server (SQLite, PostgreSQL)."""

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alert_support import (  # noqa: F401  (fixtures)
    NOW,
    SECRET,
    free_port,
    out,
    priced_accountant,
    receiver_fixture,
    smtp_sink_fixture,
)

from openwebui_token_tracking.accountant import transaction
from openwebui_token_tracking.alerts import AlertDeliverer, deliverer
from openwebui_token_tracking.alerts.webhook import verify
from openwebui_token_tracking.errors import AlertDeliveryError
from openwebui_token_tracking.storage import ledger, outbox, sponsors
from openwebui_token_tracking.storage.schema import AlertDelivery, AlertEvent


def deliveries(acct):
    return acct.run(lambda s: list(s.scalars(sa.select(AlertDelivery)
                                             .order_by(AlertDelivery.id))))


def queue_alert(db_url, credits=9.0, user="u-alice"):
    """Charge in a plain transaction (no delivery kicked): the alert waits in the outbox."""
    with transaction(db_url) as s:
        ledger.record_usage(s, user_id=user, provider="openai", model_id="gpt",
                            usage=out(credits), now=NOW)


def test_a_charge_that_crosses_is_delivered_signed_by_the_process_that_charged(
        engine, receiver):
    acct = priced_accountant(engine, alert_webhook_url=receiver.url,
                             alert_webhook_secret=SECRET)
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(9))
    acct.settle(adm.reservation_id, out(8.5), price=adm.price)
    [req] = receiver.wait_for(1)
    event = acct.run(lambda s: s.scalars(sa.select(AlertEvent)).one())
    assert verify(req.body, req.headers["X-Token-Tracking-Signature"], SECRET)
    assert req.headers["Idempotency-Key"] == event.event_key
    assert req.headers["X-Token-Tracking-Event"] == "budget.threshold_crossed"
    assert req.body.decode() == event.payload
    body = req.json()
    assert (body["scope"], body["threshold_percent"], body["spent"], body["limit"]) == \
        ("user", 80, "8.5", "10")
    assert body["subject"]["user_email"] == "alice@example.edu"
    deliverer.stop_all()
    [row] = deliveries(acct)
    assert (row.status, row.attempts, row.delivered_at) == ("delivered", 1, NOW)


def test_receiver_failing_twice_gets_three_identical_signed_deliveries(
        engine, db_url, receiver):
    acct = priced_accountant(engine, alert_webhook_url=receiver.url,
                             alert_webhook_secret=SECRET)
    receiver.statuses = [500, 503]
    queue_alert(db_url)
    d = AlertDeliverer(engine)
    first = d.deliver_due(NOW)
    assert (first.delivered, first.failed) == (0, 1)
    assert "HTTP 500" in first.errors[0]
    assert d.next_due() == NOW + timedelta(seconds=30)
    assert d.deliver_due(NOW + timedelta(seconds=29)).failed == 0  # backoff: not yet due
    assert d.deliver_due(NOW + timedelta(seconds=30)).failed == 1
    assert d.next_due() == NOW + timedelta(seconds=90)  # 30 s, then 60 s
    assert d.deliver_due(NOW + timedelta(seconds=90)).delivered == 1
    reqs = receiver.wait_for(3)
    assert len(reqs) == 3
    assert len({r.headers["Idempotency-Key"] for r in reqs}) == 1
    assert len({r.body for r in reqs}) == 1
    assert all(verify(r.body, r.headers["X-Token-Tracking-Signature"], SECRET) for r in reqs)
    assert [r.headers["X-Token-Tracking-Attempt"] for r in reqs] == ["1", "2", "3"]
    [row] = deliveries(acct)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
    assert d.next_due() is None


def test_backoff_is_exponential_and_capped_and_gives_up(engine, db_url, receiver):
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 8, 9, 20)] == \
        [30, 60, 120, 3600, 3600, 3600]
    acct = priced_accountant(engine, alert_webhook_url=receiver.url)
    receiver.statuses = [500] * 5
    queue_alert(db_url)
    d = AlertDeliverer(engine, max_attempts=2)
    d.deliver_due(NOW)
    report = d.deliver_due(NOW + timedelta(hours=2))
    assert report.gave_up == 1
    [row] = deliveries(acct)
    assert (row.status, row.attempts, row.last_error) == ("failed", 2,
                                                          "webhook answered HTTP 500")
    assert d.deliver_due(NOW + timedelta(days=1)).failed == 0


def test_delivery_failure_never_reaches_the_charge(engine):
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    acct = priced_accountant(engine, alert_webhook_url=dead)
    adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt", estimate=out(9))
    assert acct.settle(adm.reservation_id, out(9)) is not None  # charged, no error
    deliverer.stop_all()
    [row] = deliveries(acct)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error.startswith("webhook unreachable: ConnectError")


def test_two_deliverers_never_send_the_same_row_at_once(engine, db_url, receiver):
    priced_accountant(engine, alert_webhook_url=receiver.url)
    for user in ("u-alice", "u-bob", "u-admin"):
        queue_alert(db_url, 11, user)  # 80 % and 100 %: two events each
    receiver.delay = 0.2
    reports = []
    barrier = threading.Barrier(2)

    def run():
        d = AlertDeliverer(engine)
        barrier.wait(10)
        reports.append(d.deliver_due(NOW))
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.delivered for r in reports) == 6
    keys = [r.headers["Idempotency-Key"] for r in receiver.wait_for(6)]
    assert len(keys) == len(set(keys)) == 6


def test_a_claim_is_a_lease(engine, db_url, receiver):
    priced_accountant(engine, alert_webhook_url=receiver.url)
    queue_alert(db_url)
    with transaction(db_url) as s:  # a deliverer claims, then dies before sending
        [held] = outbox.claim_due(s, now=NOW, lease=deliverer.LEASE)
    d = AlertDeliverer(engine)
    assert d.deliver_due(NOW + timedelta(seconds=60)).delivered == 0
    assert d.next_due() == NOW + deliverer.LEASE
    assert d.deliver_due(NOW + deliverer.LEASE).delivered == 1
    assert receiver.wait_for(1)[0].headers["Idempotency-Key"] == held.event_key


def test_email_over_starttls_to_admins_addresses_and_the_sponsor(engine, db_url, smtp_sink):
    acct = priced_accountant(
        engine, alert_smtp_host=smtp_sink.host, alert_smtp_port=str(smtp_sink.port),
        alert_smtp_username="alerts", alert_smtp_password="pw",
        alert_email_from="budget@example.edu", alert_email_to="admins, ops@example.edu")
    acct.run(lambda s: sponsors.create_allowance(
        s, name="Course", sponsor_id="u-bob", models=["gpt"], total_credit_limit=10,
        daily_credit_limit=None, now=NOW))
    with transaction(db_url) as s:
        allowance = sponsors.get_allowance(s, name="Course")
        ledger.record_usage(s, user_id="u-alice", provider="openai", model_id="gpt",
                            usage=out(8), now=NOW, allowance=allowance)
    report = AlertDeliverer(engine, ssl_context=smtp_sink.client_tls).deliver_due(NOW)
    assert (report.delivered, report.errors) == (1, [])
    [(rcpts, msg)] = smtp_sink.wait_for(1)
    assert rcpts == ["admin@example.edu", "ops@example.edu", "bob@example.edu"]
    assert smtp_sink.logins == ["alerts"]
    assert msg["Subject"].strip() == "Budget alert: Course at 80% of the sponsored total"
    event = acct.run(lambda s: s.scalars(sa.select(AlertEvent)).one())
    assert msg["Message-ID"] == f"<{event.event_key}@owui-token-tracking>"
    assert "Spent: 8 of 10 credits (2 left)." in msg.get_content()


def test_email_failure_is_retried(engine, db_url):
    acct = priced_accountant(engine, alert_smtp_host="127.0.0.1",
                             alert_smtp_port=str(free_port()))
    queue_alert(db_url)
    report = AlertDeliverer(engine).deliver_due(NOW)
    assert report.failed == 1 and "e-mail via 127.0.0.1" in report.errors[0]
    assert deliveries(acct)[0].status == "pending"


def test_send_test_reaches_each_channel_or_says_why_not(engine, receiver, smtp_sink):
    acct = priced_accountant(engine)
    d = AlertDeliverer(engine, ssl_context=smtp_sink.client_tls)
    with pytest.raises(AlertDeliveryError, match="no alert channel is configured"):
        d.send_test()

    def configure(s):
        from openwebui_token_tracking.storage import settings_store
        for k, v in dict(alert_webhook_url=receiver.url, alert_webhook_secret=SECRET,
                         alert_smtp_host=smtp_sink.host, alert_smtp_port=str(smtp_sink.port),
                         alert_email_to="ops@example.edu").items():
            settings_store.set_value(s, k, v)
    acct.run(configure)
    assert d.send_test() == {"webhook": None, "email": None}
    [req] = receiver.wait_for(1)
    assert req.json()["type"] == "budget.test"
    assert verify(req.body, req.headers["X-Token-Tracking-Signature"], SECRET)
    assert smtp_sink.wait_for(1)[0][1]["Subject"] == "Budget alert test from owui-token-tracking"
    receiver.statuses = [404]
    assert d.send_test(["webhook"]) == {"webhook": "webhook answered HTTP 404"}
    assert json.loads(acct.run(lambda s: s.scalar(sa.select(sa.func.count())
                                                  .select_from(AlertDelivery))) or "0") == 0


def test_python_api_lists_what_a_viewer_may_see(engine, db_url):
    from openwebui_token_tracking import AlertDeliverer as Exported
    from openwebui_token_tracking.alerts import list_alerts

    assert Exported is AlertDeliverer
    priced_accountant(engine)
    queue_alert(db_url, 11)
    assert [r.threshold for r in list_alerts(db_url)] == [100, 80]
    assert [r.threshold for r in list_alerts(db_url, viewer="u-alice", limit=1)] == [100]
    assert list_alerts(db_url, viewer="u-bob") == []
    assert list_alerts(db_url, since=NOW + timedelta(seconds=1)) == []
