"""The "credit balance" action button: what is left, and when it resets.

An admin's Function is two lines::

    from openwebui_token_tracking.actions.credit_balance import CreditBalance
    Action = CreditBalance

It shows the remaining credits of the user's current window and, when the chat's
model is a workspace model bound to a sponsored allowance, of that allowance too, with
reset instants in the user's time zone. Async throughout; the database is read in a
worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from ..accountant import Accountant, BalanceReport
from ..accounting.money import quantize_display
from ..errors import TokenTrackingError
from ..openwebui.context import user_timezone
from ..openwebui.refusal import format_reset
from ..openwebui.sponsorship import binding_from_metadata, resolve_binding
from ..openwebui.valves import SECRET
from ..storage.engine import default_database_url

logger = logging.getLogger(__name__)
Emitter = Callable[[dict[str, Any]], Awaitable[Any]]


def describe(report: BalanceReport, tz: Any, label: str) -> str:
    """One part per limit: ``<label>: 12.50 of 100.00 credits left, resets ...``."""
    parts = []
    for state in report.limits:
        if state.limit is None or state.remaining is None:
            parts.append(f"{label}: unlimited")
            continue
        left = quantize_display(max(state.remaining, Decimal(0)))
        who = {"sponsor_total": f"{label} (all users)",
               "group_total": f"Team budget of {state.target}",
               "model_cap": f"Cap on model {state.target}",
               "provider_cap": f"Cap on provider {state.target}"}.get(state.scope, label)
        text = f"{who}: {left} of {quantize_display(state.limit)} credits left"
        if state.reset_at is not None:
            text += f", resets {format_reset(state.reset_at, tz)}"
        parts.append(text)
    return " | ".join(parts)


class CreditBalance:
    """Show the signed-in user's remaining credits."""

    class Valves(BaseModel):
        DATABASE_URL: str = Field(default="", description="Token-tracking database "
                                  "(empty: Open WebUI's DATABASE_URL)",
                                  json_schema_extra=SECRET)
        DASHBOARD_URL: str = Field(default="", description="Base URL of the "
                                   "owui-token-tracking service; when set, the balance "
                                   "links to the user's usage page (empty: "
                                   "TOKEN_TRACKING_DASHBOARD_URL)")

    def __init__(self) -> None:
        self.valves = self.Valves()

    async def balance_text(self, user: dict[str, Any], metadata: dict[str, Any] | None
                           ) -> str:
        url = self.valves.DATABASE_URL.strip() or default_database_url()
        acc = await asyncio.to_thread(Accountant, url)
        tz = user_timezone(user)
        own = await asyncio.to_thread(acc.balance, str(user["id"]))
        lines = [describe(own, tz, "Your credits")]
        binding = binding_from_metadata(metadata)
        if binding is not None:
            allowance = await asyncio.to_thread(acc.run,
                                                lambda s: resolve_binding(s, binding))
            sponsored = await asyncio.to_thread(acc.balance, str(user["id"]),
                                                allowance_id=allowance.id)
            lines.append(describe(sponsored, tz, f"Sponsored allowance {allowance.name!r}"))
        dashboard = (self.valves.DASHBOARD_URL.strip()
                     or os.environ.get("TOKEN_TRACKING_DASHBOARD_URL", "").strip())
        if dashboard:
            lines.append(f"Usage details: {dashboard.rstrip('/')}/me")
        return " | ".join(lines)

    async def action(self, body: dict[str, Any], __user__: dict[str, Any] | None = None,
                     __metadata__: dict[str, Any] | None = None,
                     __event_emitter__: Emitter | None = None,
                     __event_call__: Any = None, __model__: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
        async def emit(text: str, done: bool) -> None:
            if __event_emitter__ is not None:
                await __event_emitter__({"type": "status", "action": "credit_balance",
                                         "data": {"description": text, "done": done}})

        if not __user__ or not __user__.get("id"):
            await emit("No signed-in user: no credit balance to show.", True)
            return body
        await emit("Getting credit balance...", False)
        metadata = __metadata__ or ({"model": __model__} if __model__ else None)
        try:
            text = await self.balance_text(__user__, metadata)
        except TokenTrackingError as exc:
            logger.warning("credit balance failed: %s", exc)
            text = f"Could not read the credit balance: {exc}"
        await emit(text, True)
        return body
