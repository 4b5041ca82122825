"""Gateway fixtures: the fake upstream and the service (with /v1) served by uvicorn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_upstream import FakeUpstream, serving
from gw_support import SECRET, prepare, upstreams
from sqlalchemy.engine import Engine

from openwebui_token_tracking.service import create_app


@pytest.fixture
def upstream() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    with serving(fake) as url:
        yield fake, url


@pytest.fixture
def gw_engine(engine: Engine) -> Engine:
    prepare(engine)
    return engine


@pytest.fixture
def gateway_url(gw_engine: Engine, db_url: str, upstream) -> Iterator[str]:
    app = create_app(db_url, admin_token="static-admin", openwebui_secret=SECRET,
                     upstreams=upstreams(upstream[1]))
    with serving(app) as url:
        yield url
