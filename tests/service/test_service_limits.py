"""Budget limits through the JSON API, the management forms and the pages."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from svc_helpers import ADMIN, ADMIN_TOKEN, ALICE, BOB, NOW

from db_support import create_openwebui_groups
from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.errors import RateLimitExceededError
from openwebui_token_tracking.storage import settings_store


@pytest.fixture
def owui(seeded: Engine) -> Engine:
    create_openwebui_groups(seeded, {"staff": None, "phd": "staff"},
                            {"staff": ["u-alice"], "phd": ["u-bob"]})
    return seeded


def logged_in(client: TestClient) -> str:
    r = client.post("/login", data={"token": ADMIN_TOKEN, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/admin/manage")
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match
    return match.group(1)


def test_api_links_a_group(owui: Engine, client: TestClient) -> None:
    assert client.get("/api/v1/openwebui-groups", headers=ADMIN).json() == [
        {"id": "phd", "name": "Phd", "members": 1}, {"id": "staff", "name": "Staff",
                                                     "members": 1}]
    r = client.put("/api/v1/groups/Research/link", json={"openwebui_group": "Staff"},
                   headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["openwebui_group"] == {"openwebui_group_id": "staff", "name": "Staff",
                                           "exists": True, "members": 2}
    assert client.get("/api/v1/groups/Research", headers=ADMIN).json()[
        "openwebui_group_id"] == "staff"
    # alice is now a member through Open WebUI: base 1000 + Research 500
    assert client.get("/api/v1/balance", headers=ALICE).json()["limits"][0]["limit"] == \
        "1500.000000"
    assert client.put("/api/v1/groups/Research/link", json={"openwebui_group": "nope"},
                      headers=ADMIN).status_code == 404
    assert client.put("/api/v1/groups/Research/link", json={"openwebui_group": "staff"},
                      headers=ALICE).status_code == 403
    assert client.delete("/api/v1/groups/Research/link", headers=ADMIN).status_code == 204
    assert client.delete("/api/v1/groups/Research/link", headers=ADMIN).status_code == 404
    assert client.get("/api/v1/balance", headers=ALICE).json()["limits"][0]["limit"] == \
        "1000.000000"


def test_api_group_limits_and_caps(seeded: Engine, client: TestClient) -> None:
    r = client.patch("/api/v1/groups/Research/limits", headers=ADMIN,
                     json={"requests_per_minute": 20, "total_credit_limit": 900})
    assert r.status_code == 200, r.text
    assert (r.json()["requests_per_minute"], r.json()["tokens_per_minute"],
            r.json()["total_credit_limit"]) == (20, None, 900)
    r = client.patch("/api/v1/groups/Research/limits", headers=ADMIN,
                     json={"total_credit_limit": None})
    assert r.json()["total_credit_limit"] is None and r.json()["requests_per_minute"] == 20
    assert client.patch("/api/v1/groups/Research/limits", headers=ADMIN,
                        json={"requests_per_minute": 0}).status_code == 422
    assert client.patch("/api/v1/groups/Research/limits", headers=ADMIN,
                        json={}).status_code == 422

    r = client.put("/api/v1/caps", headers=ADMIN,
                   json={"kind": "model", "target": "gpt-4o", "credit_limit": 300})
    assert r.status_code == 200 and r.json()["group"] is None
    client.put("/api/v1/caps", headers=ADMIN, json={
        "kind": "model", "target": "gpt-4o", "credit_limit": 700, "group": "Research"})
    assert [c["credit_limit"] for c in client.get("/api/v1/caps", headers=ADMIN).json()] == \
        [300, 700]
    assert client.get("/api/v1/groups/Research/limits", headers=ADMIN).json()["caps"] == [
        {"group": "Research", "kind": "model", "target": "gpt-4o", "credit_limit": 700}]
    assert client.put("/api/v1/caps", headers=ADMIN, json={
        "kind": "region", "target": "eu", "credit_limit": 1}).status_code == 422
    # alice's balance shows the base cap with her spend on gpt-4o today (20 credits)
    limits = client.get("/api/v1/balance", headers=ALICE).json()["limits"]
    cap = next(lim for lim in limits if lim["scope"] == "model_cap")
    assert (cap["target"], cap["limit"], cap["spent"]) == ("gpt-4o", "300.000000",
                                                           "20.000000")
    bob = client.get("/api/v1/balance", headers=BOB).json()["limits"]
    assert next(lim for lim in bob if lim["scope"] == "model_cap")["limit"] == "700.000000"
    r = client.delete("/api/v1/caps", params={"kind": "model", "target": "gpt-4o"},
                      headers=ADMIN)
    assert r.status_code == 204
    assert client.delete("/api/v1/caps", params={"kind": "model", "target": "gpt-4o"},
                         headers=ADMIN).status_code == 404
    assert client.get("/api/v1/caps", headers=ALICE).status_code == 403


def test_api_balance_reports_rate_limits(seeded: Engine, client: TestClient) -> None:
    Accountant(seeded).run(lambda s: settings_store.set_value(s, "tokens_per_minute", "5000"))
    rate = client.get("/api/v1/balance", headers=ALICE).json()["rate"]
    assert rate["tokens_per_minute"] == 5000 and rate["requests_per_minute"] is None
    assert client.get("/api/v1/balance", headers=ALICE,
                      params={"allowance": "Course"}).json()["rate"] is None


def test_forms_link_limits_and_caps(owui: Engine, client: TestClient) -> None:
    csrf = logged_in(client)
    page = client.get("/admin/manage").text
    assert '<option value="staff">Staff (1)</option>' in page
    r = client.post("/admin/manage/groups/link", follow_redirects=False, data={
        "csrf_token": csrf, "name": "Research", "openwebui_group": "staff"})
    assert r.status_code == 303
    assert "Staff (2 members)" in client.get("/admin/manage").text
    r = client.post("/admin/manage/groups/limits", follow_redirects=False, data={
        "csrf_token": csrf, "name": "Research", "requests_per_minute": "12",
        "tokens_per_minute": "", "total_credit_limit": "800"})
    assert r.status_code == 303
    got = client.get("/api/v1/groups/Research/limits", headers=ADMIN).json()
    assert (got["requests_per_minute"], got["total_credit_limit"]) == (12, 800)
    client.post("/admin/manage/groups/limits", data={
        "csrf_token": csrf, "name": "Research", "total_credit_limit": "none"})
    assert client.get("/api/v1/groups/Research/limits", headers=ADMIN).json()[
        "total_credit_limit"] is None
    bad = client.post("/admin/manage/groups/limits", data={
        "csrf_token": csrf, "name": "Research", "requests_per_minute": "many"})
    assert bad.status_code == 422 and "requests per minute must be a whole number" in bad.text

    r = client.post("/admin/manage/caps/set", follow_redirects=False, data={
        "csrf_token": csrf, "kind": "provider", "target": "openrouter",
        "credit_limit": "50", "group": ""})
    assert r.status_code == 303
    assert "everyone (base)" in client.get("/admin/manage").text
    bad = client.post("/admin/manage/caps/set", data={
        "csrf_token": csrf, "kind": "model", "target": "x", "credit_limit": "-1"})
    assert bad.status_code == 422
    client.post("/admin/manage/caps/remove", data={
        "csrf_token": csrf, "kind": "provider", "target": "openrouter", "group": ""})
    assert client.get("/api/v1/caps", headers=ADMIN).json() == []

    with owui.begin() as conn:
        conn.exec_driver_sql("""DELETE FROM "group" WHERE id = 'staff'""")
    assert "deleted in Open WebUI" in client.get("/admin/manage").text
    dashboard = client.get("/admin").text
    assert "linked to the deleted Open WebUI group staff" in dashboard
    client.post("/admin/manage/groups/unlink", data={"csrf_token": csrf, "name": "Research"})
    assert client.get("/api/v1/groups/Research", headers=ADMIN).json()[
        "openwebui_group_id"] is None


def test_forms_need_csrf(owui: Engine, client: TestClient) -> None:
    logged_in(client)
    r = client.post("/admin/manage/caps/set", data={
        "kind": "model", "target": "x", "credit_limit": "1"})
    assert r.status_code == 403
    assert client.get("/api/v1/caps", headers=ADMIN).json() == []


def test_personal_page_shows_caps_team_budget_and_rate(seeded: Engine,
                                                       client: TestClient) -> None:
    client.put("/api/v1/caps", headers=ADMIN,
               json={"kind": "model", "target": "gpt-4o", "credit_limit": 300})
    client.patch("/api/v1/groups/Research/limits", headers=ADMIN,
                 json={"total_credit_limit": 900, "requests_per_minute": 30})
    r = client.post("/login", data={"token": ALICE["Authorization"][7:], "next": "/me"},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/me").text
    assert "Cap on model <code>gpt-4o</code>" in page and "300.00" in page
    assert "Team budget" not in page and 'id="rate"' not in page  # alice is not in Research
    client.cookies.clear()
    client.post("/login", data={"token": BOB["Authorization"][7:], "next": "/me"})
    page = client.get("/me").text
    assert "Team budget of Research (all members)" in page
    assert "0 of 30 requests" in page


def test_rate_limit_refusals_on_dashboard_and_metrics(seeded: Engine,
                                                      client: TestClient) -> None:
    acct = Accountant(seeded, clock=lambda: NOW)
    acct.run(lambda s: settings_store.set_value(s, "requests_per_minute", "1"))
    acct.admit(user_id="u-alice", provider="openai", model_id="gpt-4o",
               estimate=Usage(input_tokens=10))
    with pytest.raises(RateLimitExceededError):
        acct.admit(user_id="u-alice", provider="openai", model_id="gpt-4o",
                   estimate=Usage(input_tokens=10))
    metrics = client.get("/metrics", headers=ADMIN).text
    assert ('tt_requests_refused_total{reason="rate_limit_requests",provider="openai",'
            'model="gpt-4o",entry_point="unknown"} 1') in metrics
    csv = client.get("/admin/refusals.csv", headers=ADMIN).text
    assert "rate_limit_requests,openai,gpt-4o,unknown,1" in csv
