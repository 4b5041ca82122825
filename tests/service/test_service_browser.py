"""Browser tests in real headless Chromium (Debian's ``chromium``) against uvicorn.

Screenshots go to ``test-artifacts/`` (gitignored) for a human to look at.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy.engine import Engine
from svc_helpers import ADMIN_TOKEN, NOW, SECRET, jwt_for

from openwebui_token_tracking.service import create_app
from openwebui_token_tracking.service.demo import load_demo

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if not CHROMIUM.exists():  # a hard failure, not a skip: CI must install it
    raise RuntimeError("browser tests need Debian's chromium: apt-get install -y chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(engine: Engine, db_url: str) -> Iterator[str]:
    """The service with the demo data set, served by uvicorn in a thread."""
    assert load_demo(engine, NOW)
    app = create_app(db_url, admin_token=ADMIN_TOKEN, openwebui_secret=SECRET,
                     clock=lambda: NOW)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def login(browser: Browser, base: str, token: str, tz: str = "UTC") -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, timezone_id=tz)
    page.goto(base + "/admin")
    assert page.url.startswith(base + "/login")  # anonymous: sent to the login form
    page.fill("input[name=token]", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def shot(page: Page, name: str, backend: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{backend}.png"), full_page=True)


def test_admin_sees_charts_and_creates_group(browser: Browser, server: str,
                                             backend: str) -> None:
    page = login(browser, server, ADMIN_TOKEN)
    assert page.url == server + "/admin"
    daily = page.locator("#daily svg.chart.stacked rect.bar")
    assert daily.count() > 30  # ~31 days, several models each
    heights = [float(h) for h in daily.evaluate_all(
        "els => els.map(e => e.getAttribute('height'))")]
    assert max(heights) > 50 and all(h > 0 for h in heights)
    box = page.locator("#daily svg.chart").bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 200
    assert page.locator("#top-users svg rect.bar").count() >= 3
    assert page.locator("#allowances svg polyline.line").count() == 1
    assert "days left" in page.locator("#allowances figcaption").inner_text()
    assert "u-alice" in page.locator("#table-near_limit").inner_text()
    assert page.locator("#table-prices tbody tr").count() == 4
    # sortable: clicking "Credits" twice puts the biggest spender first
    header = page.locator("#table-users th", has_text="Credits")
    header.click()
    header.click()
    first = page.locator("#table-users tbody tr").first.locator("td").nth(4).inner_text()
    values = [float(v.replace(",", "")) for v in page.locator(
        "#table-users tbody tr td:nth-child(5)").all_inner_texts()]
    assert float(first.replace(",", "")) == max(values)
    shot(page, "admin-dashboard", backend)

    page.click("text=Manage")
    page.fill("#create-group input[name=name]", "Browser Made")
    page.fill("#create-group input[name=max_credit]", "750")
    page.click("#create-group button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "created" in page.locator("#form-notice").inner_text()
    names = page.locator("#groups-list td.group-name").all_inner_texts()
    assert "Browser Made" in names
    page.fill("#create-group input[name=name]", "browser made")
    page.fill("#create-group input[name=max_credit]", "-3")
    page.click("#create-group button[type=submit]")
    assert "whole number" in page.locator("#form-error").inner_text()
    shot(page, "admin-manage", backend)
    page.close()


def test_user_sees_only_own_usage(browser: Browser, server: str, backend: str) -> None:
    page = login(browser, server, jwt_for("u-bob"), tz="Europe/Berlin")
    assert page.url == server + "/me"  # /admin is not for users: sent to their own page
    assert "Usage of Bob" in page.locator("h1").inner_text()
    assert page.locator("#daily svg rect.bar").count() > 10
    assert "CS101 course" in page.locator("#sponsored").inner_text()
    # reset at midnight UTC, shown in the browser's zone: 01:00 in Berlin (UTC+1)
    reset = page.locator("#balance time.local.converted").inner_text()
    assert "01:00" in reset and ("GMT+1" in reset or "CET" in reset), reset
    remaining = page.locator("#remaining").inner_text()
    assert remaining and remaining != "unlimited"
    page_text = page.content()
    assert "u-alice" not in page_text and "Alice" not in page_text
    shot(page, "personal-page", backend)
    response = page.goto(server + "/me?user_id=u-alice")
    assert response is not None and response.status == 403
    response = page.goto(server + "/admin")
    assert response is not None and response.status == 403
    page.close()
