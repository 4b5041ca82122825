"""HTML pages, login cookie, CSRF and Origin checks, CSV, Open WebUI verification, demo."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from svc_helpers import ADMIN, ADMIN_TOKEN, ALICE, NOW, jwt_for

from openwebui_token_tracking.service import create_app, prepare_database
from openwebui_token_tracking.service.demo import DEMO_USERS, load_demo
from openwebui_token_tracking.storage.engine import get_engine
from openwebui_token_tracking.storage.openwebui_tables import user_table


def logged_in(client: TestClient, token: str) -> str:
    """Log in through the form; returns the CSRF token of the manage page."""
    r = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "tt_token=" in cookie
    page = client.get("/admin/manage")
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    return match.group(1) if match else ""


def test_anonymous_page_redirects_to_login(client: TestClient) -> None:
    r = client.get("/admin", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin"


def test_bad_login_shows_error(client: TestClient) -> None:
    r = client.post("/login", data={"token": "wrong"})
    assert r.status_code == 401 and "token not accepted" in r.text
    assert "tt_token" not in r.headers.get("set-cookie", "")


def test_login_does_not_redirect_off_site(client: TestClient) -> None:
    r = client.post("/login", data={"token": ADMIN_TOKEN, "next": "//evil.example/x"},
                    follow_redirects=False)
    assert r.headers["location"] == "/admin"


def test_form_with_csrf_creates_group(client: TestClient) -> None:
    csrf = logged_in(client, ADMIN_TOKEN)
    r = client.post("/admin/manage/groups/create", follow_redirects=False,
                    data={"csrf_token": csrf, "name": "Lab", "max_credit": "40"})
    assert r.status_code == 303 and "created" in r.headers["location"]
    assert "Lab" in [g["name"] for g in client.get("/api/v1/groups", headers=ADMIN).json()]


def test_form_updates_an_allowance_and_refuses_bad_values(client: TestClient) -> None:
    csrf = logged_in(client, ADMIN_TOKEN)
    r = client.post("/admin/manage/allowances/update", follow_redirects=False,
                    data={"csrf_token": csrf, "name": "Course", "total_credit_limit": "250",
                          "clear_daily_limit": "1", "expires": "2027-01-31"})
    assert r.status_code == 303 and "updated" in r.headers["location"]
    got = client.get("/api/v1/allowances/Course", headers=ADMIN).json()
    assert (got["total_credit_limit"], got["daily_credit_limit"]) == (250, None)
    assert got["expires_at"].startswith("2027-01-31")
    r = client.post("/admin/manage/allowances/update",
                    data={"csrf_token": csrf, "name": "Course", "total_credit_limit": "-3"})
    assert r.status_code == 422 and "total credit limit" in r.text
    assert client.get("/api/v1/allowances/Course", headers=ADMIN).json()[
        "total_credit_limit"] == 250


@pytest.mark.parametrize(("csrf", "headers"), [
    (None, {}), ("0" * 40, {}), ("ok", {"Origin": "http://evil.example"}),
])
def test_form_without_valid_csrf_is_refused(client: TestClient, csrf: str | None,
                                            headers: dict[str, str]) -> None:
    good = logged_in(client, ADMIN_TOKEN)
    data = {"name": "Lab", "max_credit": "40"}
    if csrf is not None:
        data["csrf_token"] = good if csrf == "ok" else csrf
    r = client.post("/admin/manage/groups/create", data=data, headers=headers)
    assert r.status_code == 403
    assert [g["name"] for g in client.get("/api/v1/groups", headers=ADMIN).json()] == [
        "Research"]


def test_cookie_api_write_needs_csrf_header(client: TestClient) -> None:
    csrf = logged_in(client, ADMIN_TOKEN)
    body = {"name": "Lab", "max_credit": 1}
    assert client.post("/api/v1/groups", json=body).status_code == 403
    r = client.post("/api/v1/groups", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201


def test_form_error_is_shown_and_nothing_written(client: TestClient) -> None:
    csrf = logged_in(client, ADMIN_TOKEN)
    r = client.post("/admin/manage/allowances/create", data={
        "csrf_token": csrf, "name": "New", "models": "gpt-4o", "total_credit_limit": "ten"})
    assert r.status_code == 422 and "total credit limit must be a whole number" in r.text
    r = client.post("/admin/manage/members/add", data={
        "csrf_token": csrf, "group": "Research", "user_id": "u-nobody"})
    assert r.status_code == 404 and "u-nobody" in r.text
    assert len(client.get("/api/v1/allowances", headers=ADMIN).json()) == 1


def test_user_pages_and_access(client: TestClient) -> None:
    logged_in(client, jwt_for("u-alice"))
    me = client.get("/me")
    assert me.status_code == 200
    assert "<title>My usage · Open WebUI token tracking</title>" in me.text
    assert me.text.count('id="keys"') == 1  # the API-key table once, inside the page body
    assert client.get("/me?user_id=u-bob").status_code == 403
    assert client.get("/admin").status_code == 403
    assert client.get("/admin/users.csv").status_code == 403
    csv_text = client.get("/me/models.csv").text
    assert csv_text.splitlines()[0].startswith("Model,Provider,Requests")
    assert "meta/llama-3" in csv_text


def test_admin_csv_matches_table(client: TestClient) -> None:
    r = client.get("/admin/users.csv?since=2026-11-01&until=2026-11-28", headers=ADMIN)
    assert r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0] == "User,Name,Requests,Tokens,Credits"
    assert lines[1].startswith("u-alice,Alice,3,") and lines[1].endswith(",240.00")
    assert client.get("/admin/nope.csv", headers=ADMIN).status_code == 404
    assert client.get("/admin?since=2026-13-01", headers=ADMIN).status_code == 422


def test_admin_can_view_a_users_page(client: TestClient) -> None:
    r = client.get("/me?user_id=u-bob", headers=ADMIN)
    assert r.status_code == 200 and "Usage of Bob" in r.text


def test_openwebui_instance_verifies_api_keys(seeded: Engine, db_url: str) -> None:
    seen: list[str] = []

    def owui(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.headers["authorization"] == "Bearer sk-alice":
            return httpx.Response(200, json={"id": "u-alice", "role": "admin"})
        return httpx.Response(401, json={"detail": "invalid"})

    app = create_app(db_url, openwebui_url="http://owui.test/", clock=lambda: NOW,
                     http_transport=httpx.MockTransport(owui))
    client = TestClient(app)
    me = client.get("/api/v1/me", headers={"Authorization": "Bearer sk-alice"}).json()
    assert me == {"user_id": "u-alice", "name": "Alice", "role": "user"}  # role from our DB
    assert seen == ["http://owui.test/api/v1/auths/"]
    client.get("/api/v1/me", headers={"Authorization": "Bearer sk-alice"})
    assert len(seen) == 1  # cached
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer sk-x"}).status_code == 401


def test_pending_account_is_403(seeded: Engine, client: TestClient) -> None:
    with seeded.begin() as conn:
        conn.execute(sa.insert(user_table).values(id="u-new", name="N", role="pending"))
    r = client.get("/api/v1/me", headers={"Authorization": "Bearer " + jwt_for("u-new")})
    assert r.status_code == 403 and "approve" in r.json()["detail"]


def test_no_auth_configured_explains(seeded: Engine, db_url: str) -> None:
    client = TestClient(create_app(db_url, clock=lambda: NOW))
    r = client.get("/api/v1/me", headers=ALICE)
    assert r.status_code == 401 and "not configured" in r.json()["detail"]


def test_fresh_database_with_demo(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'webui.db'}"
    engine = get_engine(url)
    assert prepare_database(engine, load_demo=True, now=NOW)
    assert not prepare_database(engine, load_demo=True, now=NOW)  # never twice
    with engine.connect() as conn:
        ids = list(conn.scalars(sa.select(user_table.c.id).order_by(user_table.c.id)))
    assert ids == sorted(u["id"] for u in DEMO_USERS)
    client = TestClient(create_app(url, admin_token="t", clock=lambda: NOW))
    page = client.get("/admin", headers={"Authorization": "Bearer t"})
    assert page.status_code == 200 and page.text.count('class="bar"') > 50


def test_demo_never_alters_existing_user_table(engine: Engine) -> None:
    before_cols = [c["name"] for c in sa.inspect(engine).get_columns("user")]
    with engine.connect() as conn:
        before = conn.execute(sa.select(user_table).order_by(user_table.c.id)).all()
    assert load_demo(engine, NOW)
    with engine.connect() as conn:
        assert conn.execute(sa.select(user_table).order_by(user_table.c.id)).all() == before
    assert [c["name"] for c in sa.inspect(engine).get_columns("user")] == before_cols
