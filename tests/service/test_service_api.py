"""JSON API: every endpoint, access rules, bad input, one transaction per write."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from svc_helpers import ADMIN, ALICE, BOB, NOW, OWUI_ADMIN, bearer, jwt_for

from openwebui_token_tracking.accountant import Accountant
from openwebui_token_tracking.accounting.usage import Usage
from openwebui_token_tracking.errors import DailyTokenLimitExceededError, UnknownModelError

API_ROUTES = [
    ("GET", "/api/v1/me"), ("GET", "/api/v1/balance"), ("GET", "/api/v1/users/u-bob/balance"),
    ("GET", "/api/v1/usage/summary"), ("GET", "/api/v1/usage/ledger"),
    ("GET", "/api/v1/groups"), ("POST", "/api/v1/groups"), ("GET", "/api/v1/groups/Research"),
    ("PATCH", "/api/v1/groups/Research"), ("DELETE", "/api/v1/groups/Research"),
    ("POST", "/api/v1/groups/Research/members"),
    ("DELETE", "/api/v1/groups/Research/members/u-bob"),
    ("GET", "/api/v1/allowances"), ("POST", "/api/v1/allowances"),
    ("GET", "/api/v1/allowances/Course"), ("PATCH", "/api/v1/allowances/Course"),
    ("DELETE", "/api/v1/allowances/Course"), ("GET", "/api/v1/prices"),
    ("GET", "/api/v1/prices/openai/gpt-4o"), ("PUT", "/api/v1/prices/openai/gpt-4o"),
    ("DELETE", "/api/v1/prices/openai/gpt-4o"), ("GET", "/api/v1/settings"),
    ("PUT", "/api/v1/settings/budget_period"), ("GET", "/metrics"), ("GET", "/api/v1/alerts"),
]
UNSIGNED = ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                    for part in ({"alg": "none"}, {"id": "u-alice"})) + "."
WRITES = [(m, p) for m, p in API_ROUTES if m != "GET"]


def test_route_list_covers_every_api_route(app: FastAPI) -> None:
    declared = {(m, r.path) for r in app.routes if isinstance(r, APIRoute)
                and r.path.startswith("/api/") for m in r.methods}
    tested = {(m, p.replace("u-bob", "{user_id}")) for m, p in API_ROUTES}
    normalized = {(m, p.replace("Research", "{name}").replace("Course", "{name}")
                   .replace("openai/gpt-4o", "{provider}/{model_id}")
                   .replace("budget_period", "{key}")) for m, p in tested}
    assert declared <= normalized


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_anonymous_gets_401(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "sign in" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path"), WRITES + [("GET", "/api/v1/groups"),
                                                       ("GET", "/api/v1/settings"),
                                                       ("GET", "/metrics")])
def test_user_cannot_use_admin_endpoints(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path, headers=ALICE, json={})
    assert r.status_code == 403, r.text


@pytest.mark.parametrize("token", [
    "nonsense", jwt_for("u-alice") + "x", jwt_for("u-nobody"), jwt_for("u-alice", exp=1),
    "a.b.c", UNSIGNED, jwt_for("u-alice").rsplit(".", 1)[0] + ".",
])
def test_bad_tokens_get_401(client: TestClient, token: str) -> None:
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_non_bearer_scheme_is_401(client: TestClient) -> None:
    r = client.get("/api/v1/me", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]


def test_identity_from_jwt_and_role_from_user_table(client: TestClient) -> None:
    assert client.get("/api/v1/me", headers=ALICE).json() == {
        "user_id": "u-alice", "name": "Alice", "role": "user"}
    assert client.get("/api/v1/me", headers=OWUI_ADMIN).json()["role"] == "admin"
    assert client.get("/api/v1/me", headers=ADMIN).json()["role"] == "admin"


def test_own_balance(client: TestClient) -> None:
    body = client.get("/api/v1/balance", headers=ALICE).json()
    # base 1000; today alice spent 20 (small request 1h before NOW)
    assert Decimal(body["remaining"]) == Decimal(980)
    assert body["reset_at"] == "2026-11-29T00:00:00Z"
    assert body["limits"][0]["scope"] == "user"


def test_balance_with_group_and_allowance(client: TestClient) -> None:
    bob = client.get("/api/v1/users/u-bob/balance", headers=ADMIN).json()
    assert Decimal(bob["remaining"]) == Decimal(1500)  # 1000 base + 500 group, none today
    course = client.get("/api/v1/balance?allowance=Course", headers=BOB).json()
    scopes = {lim["scope"]: lim for lim in course["limits"]}
    assert Decimal(scopes["sponsor_total"]["remaining"]) == Decimal(80)


def test_user_cannot_see_another_users_data(client: TestClient) -> None:
    assert client.get("/api/v1/users/u-bob/balance", headers=ALICE).status_code == 403
    assert client.get("/api/v1/usage/summary?user_id=u-bob", headers=ALICE).status_code == 403
    assert client.get("/api/v1/usage/ledger?user_id=u-bob", headers=ALICE).status_code == 403
    assert client.get("/api/v1/users/u-alice/balance", headers=ALICE).status_code == 200


def test_user_sees_only_own_rows_without_asking(client: TestClient) -> None:
    rows = client.get("/api/v1/usage/ledger", headers=ALICE).json()["rows"]
    assert {r["user_id"] for r in rows} == {"u-alice"} and len(rows) == 3
    summary = client.get("/api/v1/usage/summary?by=user", headers=ALICE).json()
    assert [r["key"] for r in summary["rows"]] == ["u-alice"]


def test_admin_unknown_user_balance_is_404(client: TestClient) -> None:
    r = client.get("/api/v1/users/u-ghost/balance", headers=ADMIN)
    assert r.status_code == 404 and "u-ghost" in r.json()["detail"]


@pytest.mark.parametrize(("by", "expected"), [
    ("user", {"u-alice": "240", "u-bob": "220"}),
    ("model", {"gpt-4o": "440", "meta/llama-3": "20"}),
    ("provider", {"openai": "440", "openrouter": "20"}),
    ("group", {"Research": "220", "(no group)": "240"}),
    ("allowance", {"(base allowance)": "440", "Course": "20"}),
])
def test_usage_summary(client: TestClient, by: str, expected: dict[str, str]) -> None:
    body = client.get(f"/api/v1/usage/summary?by={by}", headers=ADMIN).json()
    assert {r["key"]: Decimal(r["credits"]) for r in body["rows"]} == {
        k: Decimal(v) for k, v in expected.items()}
    assert Decimal(body["total"]["credits"]) == 460
    assert body["total"]["requests"] == 5


def test_usage_summary_by_day_and_range(client: TestClient) -> None:
    body = client.get("/api/v1/usage/summary?by=day&since=2026-11-25T00:00:00Z"
                      "&until=2026-11-28T00:00:00Z", headers=ADMIN).json()
    assert {r["key"] for r in body["rows"]} == {"2026-11-25", "2026-11-26", "2026-11-27"}
    assert body["total"]["requests"] == 3


@pytest.mark.parametrize("query", [
    "by=colour", "since=2026-11-28T00:00:00Z&until=2026-11-01T00:00:00Z", "since=yesterday",
    "until=0001-01-01T00:00:00", "limit=0", "limit=5000", "offset=-1",
])
def test_usage_bad_input_is_422(client: TestClient, query: str) -> None:
    path = "/api/v1/usage/ledger" if "limit" in query or "offset" in query \
        else "/api/v1/usage/summary"
    r = client.get(f"{path}?{query}", headers=ADMIN)
    assert r.status_code == 422, r.text


def test_ledger_pagination(client: TestClient) -> None:
    first = client.get("/api/v1/usage/ledger?limit=2", headers=ADMIN).json()
    assert first["total"] == 5 and len(first["rows"]) == 2 and first["next_offset"] == 2
    last = client.get("/api/v1/usage/ledger?limit=2&offset=4", headers=ADMIN).json()
    assert len(last["rows"]) == 1 and last["next_offset"] is None
    ids = [r["id"] for r in first["rows"]] + [r["id"] for r in last["rows"]]
    assert len(set(ids)) == 3
    assert Decimal(first["rows"][0]["credits"]) == 200  # oldest first: alice's big request


def test_group_crud(client: TestClient) -> None:
    r = client.post("/api/v1/groups", headers=ADMIN,
                    json={"name": "Staff", "max_credit": 300, "description": "staff"})
    assert r.status_code == 201 and r.json()["members"] == []
    assert client.post("/api/v1/groups", headers=ADMIN,
                       json={"name": "staff", "max_credit": 1}).status_code == 409
    r = client.post("/api/v1/groups/Staff/members", headers=OWUI_ADMIN, json={"user_id": "u-alice"})
    assert r.status_code == 201 and r.json()["members"] == ["u-alice"]
    assert Decimal(client.get("/api/v1/balance", headers=ALICE).json()["remaining"]) == 1280
    r = client.patch("/api/v1/groups/Staff", headers=ADMIN, json={"max_credit": 10,
                                                                  "new_name": "Faculty"})
    assert r.json()["name"] == "Faculty" and r.json()["max_credit"] == 10
    assert client.get("/api/v1/groups/Staff", headers=ADMIN).status_code == 404
    r = client.delete("/api/v1/groups/Faculty", headers=ADMIN)
    assert r.status_code == 422 and "member" in r.json()["detail"]
    r = client.delete("/api/v1/groups/Faculty/members/u-alice", headers=ADMIN)
    assert r.json()["members"] == []
    assert client.delete("/api/v1/groups/Faculty", headers=ADMIN).status_code == 204
    names = [g["name"] for g in client.get("/api/v1/groups", headers=ADMIN).json()]
    assert names == ["Research"]


@pytest.mark.parametrize("body", [
    {"name": "", "max_credit": 1}, {"name": "X", "max_credit": -1},
    {"name": "X", "max_credit": 10**13}, {"name": "X"}, {"name": "X", "max_credit": "lots"},
    {"name": "X", "max_credit": 1, "colour": "red"}, {"name": "a\x00b", "max_credit": 1},
    {"name": "   ", "max_credit": 1},
])
def test_group_bad_input_is_422_and_writes_nothing(client: TestClient, body: dict) -> None:
    r = client.post("/api/v1/groups", headers=ADMIN, json=body)
    assert r.status_code == 422, r.text
    assert len(client.get("/api/v1/groups", headers=ADMIN).json()) == 1


def test_member_of_unknown_user_is_404(client: TestClient) -> None:
    r = client.post("/api/v1/groups/Research/members", headers=ADMIN, json={"user_id": "u-x"})
    assert r.status_code == 404 and "u-x" in r.json()["detail"]


def test_allowance_crud(client: TestClient) -> None:
    listed = client.get("/api/v1/allowances", headers=BOB).json()
    assert [(a["name"], Decimal(a["spent"]), Decimal(a["remaining"])) for a in listed] == [
        ("Course", Decimal(20), Decimal(80))]
    r = client.post("/api/v1/allowances", headers=ADMIN, json={
        "name": "Lab", "models": ["gpt-4o", "meta/llama-3"], "total_credit_limit": 50,
        "expires_at": "2027-01-01T00:00:00Z"})
    assert r.status_code == 201 and r.json()["models"] == ["gpt-4o", "meta/llama-3"]
    r = client.patch("/api/v1/allowances/Lab", headers=ADMIN,
                     json={"daily_credit_limit": 5, "clear_expires_at": True})
    assert r.json()["daily_credit_limit"] == 5 and r.json()["expires_at"] is None
    assert client.post("/api/v1/allowances", headers=ADMIN, json={
        "name": "Lab", "models": ["x"], "total_credit_limit": 1}).status_code == 409
    assert client.post("/api/v1/allowances", headers=ADMIN, json={
        "name": "L2", "models": [], "total_credit_limit": 1}).status_code == 422
    assert client.post("/api/v1/allowances", headers=ADMIN, json={
        "name": "L3", "models": ["x"], "total_credit_limit": 1,
        "expires_at": "2027-01-01T00:00:00"}).status_code == 422  # naive instant
    assert client.delete("/api/v1/allowances/Lab", headers=ADMIN).status_code == 204
    assert client.get("/api/v1/allowances/Lab", headers=ADMIN).status_code == 404


def test_price_crud_with_slash_in_model_id(client: TestClient) -> None:
    r = client.get("/api/v1/prices/openrouter/meta/llama-3", headers=ALICE)
    assert r.status_code == 200 and r.json()["input_cost_credits"] == 1000
    r = client.put("/api/v1/prices/mistral/mistral-small", headers=ADMIN, json={
        "input_cost_credits": 100, "per_input_tokens": 1_000_000,
        "output_cost_credits": 300, "per_output_tokens": 1_000_000})
    assert r.status_code == 200 and r.json()["name"] == "mistral-small"
    assert r.json()["updated_at"] == "2026-11-28T12:00:00Z"
    bad = client.put("/api/v1/prices/mistral/mistral-small", headers=ADMIN, json={
        "input_cost_credits": 1, "per_input_tokens": 1, "output_cost_credits": 1,
        "per_output_tokens": 1, "cached_input_cost_credits": 1})
    assert bad.status_code == 422 and "per_cached_input_tokens" in bad.json()["detail"]
    assert client.get("/api/v1/prices/mistral/mistral-small",
                      headers=ADMIN).json()["input_cost_credits"] == 100
    assert client.delete("/api/v1/prices/mistral/mistral-small", headers=ADMIN).status_code == 204
    assert client.delete("/api/v1/prices/mistral/mistral-small", headers=ADMIN).status_code == 404
    assert len(client.get("/api/v1/prices", headers=ALICE).json()) == 2


def test_settings(client: TestClient) -> None:
    listed = {s["key"]: s for s in client.get("/api/v1/settings", headers=ADMIN).json()}
    assert listed["budget_period"]["value"] == "day"
    r = client.put("/api/v1/settings/budget_period", headers=ADMIN, json={"value": "week"})
    assert r.status_code == 200 and r.json()["value"] == "week"
    r = client.put("/api/v1/settings/budget_period", headers=ADMIN, json={"value": "fortnight"})
    assert r.status_code == 422 and "day, week or month" in r.json()["detail"]
    assert client.put("/api/v1/settings/colour", headers=ADMIN,
                      json={"value": "x"}).status_code == 404
    # the window is now the ISO week: alice's 20 + 200 (5 days ago is last week? no: Mon 23rd)
    assert client.get("/api/v1/balance", headers=ALICE).json()["reset_at"] == \
        "2026-11-30T00:00:00Z"


def test_failed_write_leaves_nothing(client: TestClient) -> None:
    """Renaming onto an existing name fails after the allowance change was flushed."""
    client.post("/api/v1/allowances", headers=ADMIN, json={
        "name": "Other", "models": ["gpt-4o"], "total_credit_limit": 5})
    r = client.patch("/api/v1/allowances/Course", headers=ADMIN,
                     json={"total_credit_limit": 999, "new_name": "Other"})
    assert r.status_code == 409
    assert client.get("/api/v1/allowances/Course",
                      headers=ADMIN).json()["total_credit_limit"] == 100


def test_metrics(client: TestClient) -> None:
    r = client.get("/metrics", headers=ADMIN)
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    # rows recorded without an entry point (the 0.1.10 API) are labelled unknown
    assert ('tt_credits_charged_total{provider="openai",model="gpt-4o",'
            'entry_point="unknown"} 440.000000') in text
    assert ('tt_tokens_charged_total{provider="openai",model="gpt-4o",entry_point="unknown",'
            'kind="input"} 220000') in text
    assert ('tt_requests_charged_total{provider="openrouter",model="meta/llama-3",'
            'entry_point="unknown"} 1') in text
    assert 'tt_sponsored_allowance_remaining_credits{allowance="Course"} 80.000000' in text
    assert "tt_reservations_open 0" in text
    assert "# TYPE tt_requests_refused_total counter" in text


def test_metrics_count_refusals_by_reason(client: TestClient, seeded: Engine) -> None:
    acct = Accountant(seeded)
    for model in ("no-such-model", "no-such-model"):
        with pytest.raises(UnknownModelError):
            acct.admit(user_id="u-alice", provider="openai", model_id=model,
                       estimate=Usage(input_tokens=10), now=NOW)
    with pytest.raises(DailyTokenLimitExceededError):
        acct.admit(user_id="u-alice", provider="openai", model_id="gpt-4o",
                   estimate=Usage(input_tokens=10**9), now=NOW)
    text = client.get("/metrics", headers=ADMIN).text
    assert ('tt_requests_refused_total{reason="unpriced_model",provider="openai",'
            'model="no-such-model",entry_point="unknown"} 2') in text
    assert ('tt_requests_refused_total{reason="user_limit",provider="openai",'
            'model="gpt-4o",entry_point="unknown"} 1') in text


def test_metrics_count_open_reservations(client: TestClient, seeded: Engine) -> None:
    Accountant(seeded).admit(user_id="u-alice", provider="openai", model_id="gpt-4o",
                             estimate=Usage(input_tokens=1000), now=NOW)
    text = client.get("/metrics", headers=ADMIN).text
    assert "tt_reservations_open 1" in text
    assert "tt_reservations_open_credits 1.000000" in text


def test_healthz_needs_no_auth(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_unique_clash_missed_by_storage_is_409_not_500(client: TestClient) -> None:
    """Found by the fuzz run: SQLite's lower() folds ASCII only, Python's folds all, so
    storage's duplicate check misses a second "É" and the unique index refuses it."""
    assert client.post("/api/v1/groups", headers=ADMIN,
                       json={"name": "É", "max_credit": 1}).status_code == 201
    r = client.post("/api/v1/groups", headers=ADMIN, json={"name": "É", "max_credit": 1})
    assert r.status_code == 409, r.text
    assert [g["name"] for g in client.get("/api/v1/groups", headers=ADMIN).json()] == [
        "Research", "É"]


def test_a_resolved_alias_is_a_price_row_admins_manage(client: TestClient,
                                                       seeded: Engine) -> None:
    Accountant(seeded).admit(user_id="u-alice", provider="openai",
                             model_id="gpt-4o-2024-08-06", estimate=Usage(input_tokens=10),
                             now=NOW)
    alias = client.get("/api/v1/prices/openai/gpt-4o-2024-08-06", headers=ADMIN).json()
    gpt = client.get("/api/v1/prices/openai/gpt-4o", headers=ADMIN).json()
    assert (alias["source"], alias["matched_model_id"]) == ("genai-prices", "gpt-4o")
    assert alias["input_cost_credits"] == gpt["input_cost_credits"]
    assert gpt["matched_model_id"] is None
    r = client.put("/api/v1/prices/openai/gpt-4o-2024-08-06", headers=ADMIN, json={
        "input_cost_credits": 1, "per_input_tokens": 1000, "output_cost_credits": 2,
        "per_output_tokens": 1000})
    assert (r.json()["source"], r.json()["matched_model_id"]) == ("manual", None)
    assert client.delete("/api/v1/prices/openai/gpt-4o-2024-08-06",
                         headers=ADMIN).status_code == 204
