"""A priced test database for the pipe, action and filter tests."""

from __future__ import annotations

import pytest
from fakes import EPOCH, MODELS
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from openwebui_token_tracking.storage.prices import set_price


@pytest.fixture
def priced(engine: Engine) -> Engine:
    """The test database with the test models priced since 1970."""
    with Session(engine) as s, s.begin():
        for provider, model_id, name, price in MODELS:
            set_price(s, provider=provider, model_id=model_id, name=name, price=price,
                      now=EPOCH, effective_from=EPOCH)
    return engine
