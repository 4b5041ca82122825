"""Service fixtures: a seeded database, the app on it (clock fixed at NOW)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from svc_helpers import ADMIN_TOKEN, NOW, SECRET, seed

from openwebui_token_tracking.service import create_app


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    seed(engine)
    return engine


@pytest.fixture
def app(seeded: Engine, db_url: str) -> FastAPI:
    return create_app(db_url, admin_token=ADMIN_TOKEN, openwebui_secret=SECRET,
                      clock=lambda: NOW)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)
