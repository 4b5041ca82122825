"""Alert history through ``GET /api/v1/alerts`` and the dashboards: who sees what."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from svc_helpers import ADMIN, ALICE, BOB, NOW, OWUI_ADMIN

from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.alerts import AlertDeliverer
from openwebui_token_tracking.storage import ledger, settings_store, sponsors


def _alice_sponsors_lab(engine: Engine) -> None:
    """Alice sponsors "Lab" (total 50); bob spends 45 of it today: 80 % of its total."""
    with Session(engine) as s, s.begin():
        lab = sponsors.create_allowance(s, name="Lab", sponsor_id="u-alice", models=["gpt-4o"],
                                        total_credit_limit=50, daily_credit_limit=None,
                                        now=NOW - timedelta(days=3))
        settings_store.set_value(s, "alert_webhook_url", "http://127.0.0.1:9/hook")
        ledger.record_usage(s, user_id="u-bob", provider="openai", model_id="gpt-4o",
                            usage=Usage(input_tokens=25_000, output_tokens=10_000),
                            now=NOW - timedelta(minutes=1),
                            allowance=lab)


def test_admins_see_every_alert(client: TestClient, seeded: Engine) -> None:
    _alice_sponsors_lab(seeded)
    for headers in (ADMIN, OWUI_ADMIN):
        alerts = client.get("/api/v1/alerts", headers=headers).json()
        got = [(a["scope"], a["threshold_percent"]) for a in alerts]
        # seed: bob spent 20 of Course's 10 per day (yesterday); today 45 of Lab's 50
        assert got == [("sponsor_total", 80), ("sponsor_user", 100), ("sponsor_user", 80)]
    lab = alerts[0]
    assert (lab["spent"], lab["limit"], lab["user_id"]) == ("45.000000", "50.000000", None)
    assert lab["payload"]["subject"]["allowance_name"] == "Lab"
    assert lab["payload"]["subject"]["sponsor_email"] == "alice@example.edu"
    assert lab["deliveries"][0]["channel"] == "webhook"
    assert lab["deliveries"][0]["status"] == "pending"


def test_sponsors_and_users_see_only_theirs(client: TestClient, seeded: Engine) -> None:
    _alice_sponsors_lab(seeded)
    mine = client.get("/api/v1/alerts", headers=ALICE).json()
    assert [(a["scope"], a["payload"]["subject"]["allowance_name"]) for a in mine] == \
        [("sponsor_total", "Lab")]  # her allowance; not bob's Course limit
    bobs = client.get("/api/v1/alerts", headers=BOB).json()
    assert [(a["scope"], a["user_id"]) for a in bobs] == [("sponsor_user", "u-bob")] * 2
    assert client.get("/api/v1/alerts?scope=sponsor_total", headers=BOB).json() == []
    since = (NOW - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert len(client.get(f"/api/v1/alerts?since={since}", headers=ADMIN).json()) == 1
    assert client.get("/api/v1/alerts?limit=0", headers=ADMIN).status_code == 422


def test_delivery_errors_are_for_admins(client: TestClient, seeded: Engine) -> None:
    _alice_sponsors_lab(seeded)
    assert AlertDeliverer(seeded).deliver_due(NOW).failed == 1  # nobody listens on port 9
    [admin_view] = client.get("/api/v1/alerts?scope=sponsor_total", headers=ADMIN).json()
    [sponsor_view] = client.get("/api/v1/alerts", headers=ALICE).json()
    assert admin_view["deliveries"][0]["last_error"].startswith("webhook unreachable")
    assert sponsor_view["deliveries"][0]["attempts"] == 1
    assert sponsor_view["deliveries"][0]["last_error"] is None


def test_dashboards_show_alerts(client: TestClient, seeded: Engine) -> None:
    _alice_sponsors_lab(seeded)
    admin = client.get("/admin", headers=ADMIN).text
    assert 'id="alerts"' in admin and "Lab" in admin and "webhook: pending" in admin
    csv = client.get("/admin/alerts.csv", headers=ADMIN).text
    assert csv.splitlines()[0] == "When (UTC),Scope,Who,Threshold %,Spent,Limit,Delivery"
    assert len(csv.splitlines()) == 4
    alice = client.get("/me", headers=ALICE).text
    assert "Budget alerts" in alice and "sponsor_total" in alice
    assert "sponsor_user" not in alice
    bob = client.get("/me/alerts.csv", headers=BOB).text
    assert len(bob.splitlines()) == 3 and "Course / Bob" in bob
