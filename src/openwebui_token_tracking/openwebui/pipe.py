"""The tracked manifold pipe: Open WebUI's ``pipe()`` in front of a wire protocol.

Per request: resolve model, user and sponsored allowance -> admission (a limit
refusal is raised, so Open WebUI shows it) -> stream or not -> settle in ``finally``.
The metering (what is charged when a stream is stopped, fails or completes) is
:mod:`..metering.relay`, shared with the gateway; this module only speaks Open WebUI:
``<think>`` tags, the usage chunk, the status line. Everything is async: HTTP with
``httpx.AsyncClient``, the database in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from datetime import datetime
from typing import Any, ClassVar

import httpx

from ..accountant import Accountant, utcnow
from ..errors import TokenTrackingError
from ..metering import PIPE, Bill, finish, metered_deltas, send
from ..providers.client import ProviderStream
from ..providers.estimate import prompt_tokens
from ..providers.protocol import MAX_TOKENS, Completion, WireProtocol
from ..providers.transport import async_client
from ..storage.aliases import usable_ids
from ..storage.prices import list_prices
from .billing import bill_for
from .chunks import ThinkTags, completion, status_line, usage_chunk
from .context import RequestContext
from .model_list import ServedModels, listed
from .valves import PipeSettings, PipeValves, resolve

logger = logging.getLogger(__name__)

Emitter = Callable[[dict[str, Any]], Awaitable[Any]]


class TrackedPipe:
    """Base of the tracked pipes; a subclass names its protocol and environment."""

    protocol: ClassVar[WireProtocol]
    provider_default: ClassVar[str]
    """Provider billed when the PROVIDER valve is empty."""
    key_env: ClassVar[tuple[str, ...]] = ()
    url_env: ClassVar[tuple[str, ...]] = ()
    Valves: ClassVar[type[PipeValves]] = PipeValves

    transport: httpx.AsyncBaseTransport | None = None
    """Tests inject ``httpx.MockTransport`` here; None uses the network."""
    clock: Callable[[], datetime] = staticmethod(utcnow)

    def __init__(self) -> None:
        self.type = "manifold"
        self.valves = self.Valves()
        self._accountants: dict[str, Accountant] = {}
        self._client: httpx.AsyncClient | None = None
        self._served = ServedModels()
        self._client_lock = asyncio.Lock()

    # -- configuration -------------------------------------------------------------------

    def settings(self) -> PipeSettings:
        return resolve(self.valves, self.protocol, provider=self.provider_default,
                       key_env=self.key_env, url_env=self.url_env)

    async def accountant(self, settings: PipeSettings) -> Accountant:
        acc = self._accountants.get(settings.database_url)
        if acc is None:
            acc = await asyncio.to_thread(Accountant, settings.database_url, self.clock)
            self._accountants[settings.database_url] = acc
        return acc

    async def client(self, settings: PipeSettings) -> httpx.AsyncClient:
        """One client per pipe instance (built in a thread: loading CA certs blocks; under
        a lock, or concurrent first requests each build one and all but one leak)."""
        async with self._client_lock:
            if self._client is None or self._client.is_closed:
                timeout = httpx.Timeout(settings.connection.timeout_s, connect=10.0)
                self._client = await asyncio.to_thread(async_client, timeout, self.transport)
            return self._client

    # -- Open WebUI entry points ---------------------------------------------------------

    async def pipes(self) -> list[dict[str, str]]:
        """The models Open WebUI lists for this pipe: those the provider serves that have
        or resolve to a price (``model_list``); the priced models when the provider's
        list cannot be read."""
        settings = self.settings()
        acc = await self.accountant(settings)
        now = self.clock()
        served = await self._served.get(await self.client(settings), self.protocol,
                                        settings.connection, settings.provider, now)
        if served is not None:
            usable = await asyncio.to_thread(acc.run, lambda s: usable_ids(
                s, settings.provider, [m.id for m in served], now), read_only=True)
            return listed(served, usable)
        rows = await asyncio.to_thread(acc.run, lambda s: [
            (r.id, r.name) for r in list_prices(s, provider=settings.provider)])
        return [{"id": model_id, "name": name or model_id} for model_id, name in rows]

    async def pipe(self, body: dict[str, Any], __user__: dict[str, Any] | None = None,
                   __metadata__: dict[str, Any] | None = None,
                   __event_emitter__: Emitter | None = None, __task__: Any = None,
                   __chat_id__: str | None = None, __message_id__: str | None = None
                   ) -> str | dict[str, Any] | AsyncIterator[str | dict[str, Any]]:
        settings = self.settings()
        ctx = RequestContext.from_openwebui(body, __user__, __metadata__, __task__,
                                            __chat_id__, __message_id__)
        call = self.protocol.build_call(settings.connection, ctx.model_id, body, ctx.stream)
        max_out = body.get("max_tokens") or body.get("max_completion_tokens")
        bill = bill_for(await self.accountant(settings), settings.provider, ctx,
                        prompt_tokens(body.get("messages") or []),
                        min(max_out, MAX_TOKENS) if isinstance(max_out, int) and max_out > 0
                        else settings.default_max_output, PIPE)
        await bill.admit()
        emitter = __event_emitter__ if settings.show_status and not ctx.task else None
        try:
            client = await self.client(settings)
        except Exception:
            await bill.release()
            raise
        answer = await send(bill, client, self.protocol, call, ctx.stream)
        if isinstance(answer, Completion):
            return await self._finish(bill, ctx, answer, emitter)
        return self._relay(answer, bill, ctx, emitter)

    # -- answers -------------------------------------------------------------------------

    async def _finish(self, bill: Bill, ctx: RequestContext, answer: Completion,
                      emitter: Emitter | None) -> dict[str, Any]:
        settled = await finish(bill, answer)
        await self._status(bill, emitter)
        return completion(ctx.requested_model, answer.text, settled.usage, answer.reasoning)

    async def _relay(self, stream: ProviderStream, bill: Bill, ctx: RequestContext,
                     emitter: Emitter | None) -> AsyncIterator[str | dict[str, Any]]:
        tags = ThinkTags()
        async with aclosing(metered_deltas(stream, bill)) as deltas:
            async for delta in deltas:
                yield tags.wrap(delta.text, delta.reasoning)
        if tags.open:
            yield tags.close()
        if bill.settlement is not None:
            yield usage_chunk(ctx.requested_model, bill.settlement.usage)
            await self._status(bill, emitter)

    async def _status(self, bill: Bill, emitter: Emitter | None) -> None:
        if emitter is None or bill.settlement is None:
            return
        try:
            report = await bill.balance()
        except TokenTrackingError as exc:
            logger.warning("could not read the balance for the status line: %s", exc)
            report = None
        s = bill.settlement
        await emitter({"type": "status", "data": {
            "description": status_line(s.usage, s.charged_micro, report), "done": True}})
