"""The metered gateway: who calls, which model, admission, relay, settlement.

Per request: the caller (an Open WebUI API key or session token, resolved as the
service resolves them; cached ``CALLER_TTL`` seconds) -> the model (catalogue) ->
admission through the same ``metering.Bill`` as the pipes (user limit, sponsored
allowance of a workspace model, a capped key) -> the provider through the same wire
adapters -> an OpenAI-format answer -> settlement in ``finally`` (``metering.relay``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import httpx
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from ..accountant import Accountant
from ..errors import ProviderError
from ..metering import GATEWAY, Bill, MeteredRequest, finish, metered_deltas, send
from ..metering.relay import AnswerEnd
from ..openwebui.context import user_timezone
from ..openwebui.sponsorship import resolve_binding
from ..providers.client import ProviderStream
from ..providers.estimate import prompt_tokens
from ..providers.protocol import Completion
from ..providers.transport import async_client
from ..service.auth import STATIC_ADMIN_ID, Authenticator, AuthError
from ..storage.async_admission import AsyncAdmissions
from ..storage.openwebui_access import user_timezone_name
from .catalog import Catalog, Listed, readable
from .config import Upstream
from .requests import ChatRequest
from .stream import EndOfBody, EventStream
from .wire import DONE, Chunks, completion_body, error_body, event, model_card

CALLER_TTL = 10.0
"""Seconds a resolved token is trusted before Open WebUI's tables are read again (a
revoked key keeps working at most this long)."""
MAX_CACHED_CALLERS = 10_000


@dataclass(frozen=True)
class Caller:
    """Who calls: the user charged, their zone (for refusals) and key (for its budget)."""

    user_id: str
    is_admin: bool
    timezone: ZoneInfo
    api_key_id: str | None


class Gateway:
    """The ``/v1`` endpoint's state: upstream clients, the catalogue, caller cache."""

    def __init__(self, accountant: Accountant, auth: Authenticator,
                 upstreams: list[Upstream],
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.accountant = accountant
        self.auth = auth
        self.upstreams = upstreams
        self.catalog = Catalog(upstreams)
        self.transport = transport
        self.admissions = (AsyncAdmissions(accountant.engine)
                           if accountant.engine.dialect.name == "postgresql" else None)
        """PostgreSQL: admissions on the event loop (``storage.async_admission``)."""
        self._clients = {u.provider: self._new_client(u) for u in upstreams}
        """Built here, off the event loop (loading CA certificates blocks)."""
        self._callers: dict[str, tuple[float, Caller]] = {}

    # -- who and what --------------------------------------------------------------------

    async def caller(self, authorization: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("send your Open WebUI API key as 'Authorization: Bearer sk-...'")
        digest = hashlib.sha256(token.encode()).hexdigest()
        hit = self._callers.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        found = await asyncio.to_thread(self._resolve_caller, token)
        if len(self._callers) >= MAX_CACHED_CALLERS:
            self._callers.clear()
        self._callers[digest] = (time.monotonic() + CALLER_TTL, found)
        return found

    def _resolve_caller(self, token: str) -> Caller:
        principal = self.auth.authenticate(token, "header", self.accountant.clock())
        if principal.user_id == STATIC_ADMIN_ID:
            raise AuthError("the service's admin token is not a user and cannot be charged; "
                            "call models with an Open WebUI API key", 403)
        zone = self.accountant.run(lambda s: user_timezone_name(s, principal.user_id),
                                   read_only=True)
        return Caller(principal.user_id, principal.is_admin,
                      user_timezone({"timezone": zone}), principal.api_key_id)

    def _listed(self, model: str, caller: Caller) -> Listed:
        """The model, after checking a workspace model is open to the caller."""
        def work(session: Session) -> Listed:
            listed = self.catalog.resolve(self.catalog.snapshot(session), model)
            wm = listed.workspace
            if wm is not None and not (caller.is_admin or wm.owner_id == caller.user_id
                                       or readable(session, caller.user_id, [wm.id])):
                raise AuthError(f"you may not use workspace model {model!r}", 403)
            return listed
        return self.accountant.run(work, read_only=True)

    async def models(self, caller: Caller) -> JSONResponse:
        now = self.accountant.clock()
        listed = await asyncio.to_thread(self.accountant.run, lambda s: self.catalog.listing(
            s, caller.user_id, caller.is_admin, now), read_only=True)
        return JSONResponse({"object": "list", "data": [
            model_card(m.id, m.owned_by, m.name) for m in listed]})

    # -- chat ----------------------------------------------------------------------------

    def _new_client(self, upstream: Upstream) -> httpx.AsyncClient:
        return async_client(httpx.Timeout(upstream.connection.timeout_s, connect=10.0),
                            self.transport)

    def client(self, upstream: Upstream) -> httpx.AsyncClient:
        client = self._clients.get(upstream.provider)
        if client is None or client.is_closed:
            client = self._clients[upstream.provider] = self._new_client(upstream)
        return client

    async def chat(self, caller: Caller, req: ChatRequest) -> Response:
        listed = self._cached_plain(req.model)
        if listed is None:
            listed = await asyncio.to_thread(self._listed, req.model, caller)
        target = listed.target
        upstream = target.upstream
        call = upstream.protocol.build_call(upstream.connection, target.model_id, req.body,
                                            req.stream)
        binding = target.binding
        bill = Bill(self.accountant, MeteredRequest(
            user_id=caller.user_id, provider=upstream.provider, model_id=target.model_id,
            timezone=caller.timezone, entry_point=GATEWAY, api_key_id=caller.api_key_id,
            allowance=None if binding is None else (lambda s: resolve_binding(s, binding))),
            prompt_tokens(req.body["messages"]),
            req.max_output_tokens or upstream.default_max_output, self.admissions)
        await bill.admit()
        answer = await send(bill, self.client(upstream), upstream.protocol, call, req.stream)
        if isinstance(answer, Completion):
            settled = await finish(bill, answer)
            return JSONResponse(completion_body(req.model, answer, settled.usage))
        return EventStream(self._events(answer, bill, req))

    def _cached_plain(self, model: str) -> Listed | None:
        """A priced model from the cached catalogue (no thread hop, no query)."""
        snap = self.catalog.cached()
        found = None if snap is None else (snap.models.get(model) or snap.aliases.get(model))
        return found if found is not None and found.workspace is None else None

    async def _events(self, stream: ProviderStream, bill: Bill, req: ChatRequest
                      ) -> AsyncIterator[bytes | EndOfBody]:
        chunks = Chunks(req.model)
        role = chunks.role()  # sent with the first delta: one write fewer per answer
        try:
            async with aclosing(metered_deltas(stream, bill, announce_end=True)) as deltas:
                async for delta in deltas:
                    if not isinstance(delta, AnswerEnd):
                        yield role + chunks.delta(delta)
                        role = b""
                        continue
                    # The answer is complete: the client gets its end now (one write),
                    # and the charge is written after it (the loop runs on to the
                    # settlement).
                    usage = chunks.usage(delta.usage) if req.include_usage else b""
                    yield EndOfBody(role + chunks.finish() + usage + DONE)
        except ProviderError as exc:
            yield role + event(error_body(str(exc), "api_error", "upstream_error"))

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        if self.admissions is not None:
            await self.admissions.aclose()

