"""The deployment under test: constants, and the admin's setup steps.

What an admin does to meter a real Open WebUI: our tables, defaults and a price in
Open WebUI's database; the tracked pipe as a Function (created, toggled active, valves
set); a model entry that normal users may read.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from openwebui_token_tracking.accountant import Accountant, utcnow
from openwebui_token_tracking.storage import migrate, prices, settings_store
from openwebui_token_tracking.storage.engine import get_engine

from .fake_openai import API_KEY, MODEL, FakeOpenAI
from .openwebui_api import Account, OpenWebUIClient
from .openwebui_server import OpenWebUI

FUNCTION_ID = "tracked_openai"
FUNCTION_CODE = (
    "from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe\n"
    "Pipe = OpenAITrackedPipe\n"
)
PROVIDER = "e2e-fake"
"""Billed provider (the PROVIDER valve): deliberately not the function id nor "openai"."""
PIPE_MODEL = f"{FUNCTION_ID}.{MODEL}"
"""Open WebUI's id of a manifold pipe's model: ``<function id>.<pipe()'s model id>``."""
PRICE = prices.PriceInput(
    input_cost_credits=3, per_input_tokens=1000,
    output_cost_credits=15, per_output_tokens=1000,
    cached_input_cost_credits=1, per_cached_input_tokens=1000,
)
"""3 / 15 / 1 credits per 1000 input / output / cached tokens (exact in micro-credits)."""
PASSWORD = "E2e-Passw0rd!"



@dataclass
class Deployment:
    """Open WebUI with our tables, the tracked pipe Function and one model entry."""

    backend: str
    server: OpenWebUI
    api: OpenWebUIClient
    admin: Account
    accountant: Accountant
    provider: FakeOpenAI

    @property
    def engine(self) -> Engine:
        return self.accountant.engine

    def new_user(self, name: str) -> Account:
        email = f"{name.lower()}@e2e.test"
        return self.api.add_user(self.admin, name, email, PASSWORD)


def init_token_tracking(database_url: str) -> Accountant:
    """What an admin does once: our tables in Open WebUI's DB, defaults, a price."""
    accountant = Accountant(get_engine(database_url))
    migrate.upgrade(accountant.engine)
    accountant.run(settings_store.ensure_defaults)
    accountant.run(lambda s: prices.set_price(
        s, provider=PROVIDER, model_id=MODEL, name="Fake GPT (e2e)", price=PRICE,
        now=utcnow()))
    return accountant


def install_pipe(api: OpenWebUIClient, admin: Account, provider_url: str,
                 database_url: str) -> None:
    function = api.create_function(admin, FUNCTION_ID, "Tracked OpenAI (e2e)", FUNCTION_CODE)
    assert function["type"] == "pipe", function
    assert api.toggle_function(admin, FUNCTION_ID) is True
    valves = {"API_BASE_URL": provider_url, "API_KEY": API_KEY, "PROVIDER": PROVIDER,
              "DATABASE_URL": database_url}
    stored = api.update_valves(admin, FUNCTION_ID, valves)
    assert {k: stored.get(k) for k in valves} == valves, stored
