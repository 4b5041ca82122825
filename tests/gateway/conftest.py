"""Gateway fixtures: the fake upstream and the service (with /v1) served by uvicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import openai
import pytest
from fake_upstream import FakeUpstream, serving
from gw_support import ALICE_KEY, SECRET, prepare, upstreams
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


@pytest.fixture
def oai(gateway_url: str) -> Iterator[Callable[..., openai.OpenAI]]:
    """Official clients on the gateway (closed afterwards), by API key or token."""
    made: list[openai.OpenAI] = []

    def make(key: str = ALICE_KEY) -> openai.OpenAI:
        made.append(openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0))
        return made[-1]

    yield make
    for c in made:
        c.close()
