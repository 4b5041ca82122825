"""Admission and settlement of one request, off the event loop.

Every entry point that forwards a request to a provider (the tracked pipes inside Open
WebUI, the gateway outside it) charges through a ``Bill``: reserve the estimate, tally
what streams, settle once. The ``Accountant`` is synchronous (SQLAlchemy); every call
here runs it in a worker thread (``asyncio.to_thread``) so the event loop keeps serving
other users while the database works. Settlement is shielded from cancellation: a
stopped stream still gets its charge written.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ..accountant import Accountant, BalanceReport
from ..accounting.pricing import charge
from ..accounting.usage import Usage
from ..errors import DatabaseError, TokenLimitExceededError
from ..providers.estimate import tokens_for_chars
from ..storage.ledger import Admitted
from ..storage.schema import SponsoredAllowance
from .outage import unavailable
from .refusal import refusal, refusal_facts

if TYPE_CHECKING:  # psycopg's async side, imported by the gateway that uses it
    from ..storage.async_admission import AsyncAdmissions

logger = logging.getLogger(__name__)
T = TypeVar("T")

PIPE, FILTER, GATEWAY = "pipe", "filter", "gateway"
"""Entry points, recorded on ledger rows and refusal counts (``/metrics`` labels)."""

AllowanceResolver = Callable[[Session], SponsoredAllowance]
"""Finds (and checks the caller's right to) the sponsored allowance a request spends."""

_warned_no_usage: set[tuple[str, str]] = set()


def warn_no_usage_once(provider: str, model_id: str) -> None:
    """Log once per (provider, model) that a server reports no usage."""
    key = (provider, model_id)
    if key in _warned_no_usage:
        return
    _warned_no_usage.add(key)
    logger.warning(
        "%s model %s reported no token usage; charging a local estimate (4 characters per "
        "token) with status 'estimated'. Enable usage reporting on the server if you can.",
        provider, model_id)


async def in_thread(accountant: Accountant, work: Callable[[Session], T]) -> T:
    return await asyncio.to_thread(accountant.run, work)


@dataclass(frozen=True)
class MeteredRequest:
    """Who pays for one request, for which model, and how its row is recorded."""

    user_id: str
    provider: str
    """The provider billed (its prices apply)."""
    model_id: str
    """The provider's model id."""
    timezone: ZoneInfo
    """The user's zone: refusals show the reset instant in it."""
    entry_point: str
    task: str | None = None
    """Open WebUI background task (title, tags, ...): charged, never refused."""
    chat_id: str | None = None
    message_id: str | None = None
    api_key_id: str | None = None
    """Non-secret id of the caller's API key; a capped key is one more limit."""
    allowance: AllowanceResolver | None = None


@dataclass(frozen=True)
class Settlement:
    usage: Usage
    status: str
    charged_micro: int
    row_id: int | None


class Bill:
    """The money side of one request: reserve, tally what streams, settle once."""

    def __init__(self, accountant: Accountant, request: MeteredRequest, prompt_tokens: int,
                 max_output_tokens: int, admissions: AsyncAdmissions | None = None) -> None:
        self.accountant = accountant
        self.admissions = admissions
        """PostgreSQL: admit a one-limit request on the event loop first
        (``storage.async_admission``); the worker thread does the rest."""
        self.request = request
        self.prompt_tokens = prompt_tokens
        self.max_output_tokens = max_output_tokens
        self.output_chars = 0
        self.admitted: Admitted | None = None
        self.allowance_id: uuid.UUID | None = None
        self.allowance_name: str | None = None
        self.settlement: Settlement | None = None
        self._closed = False

    @property
    def provider(self) -> str:
        return self.request.provider

    def add_output(self, text: str) -> None:
        self.output_chars += len(text)

    def estimate(self) -> Usage:
        """What was used, estimated from the prompt and the text streamed so far."""
        return Usage(input_tokens=self.prompt_tokens,
                     output_tokens=tokens_for_chars(self.output_chars))

    def usage_to_charge(self, seen: Usage | None) -> Usage:
        """What ``settle`` charges: the server's usage if it reported any, else the
        estimate (``seen`` itself when it is used)."""
        return seen if seen is not None and not seen.is_empty() else self.estimate()

    async def admit(self) -> Admitted:
        """Reserve the estimated cost; a limit refusal is raised with the user's message,
        and so is a database that cannot be reached (fail closed, see ``outage``).

        Background tasks (titles, tags, follow-ups) are charged but never refused.
        """
        try:
            return await self._admit()
        except DatabaseError as exc:
            raise unavailable(exc) from exc

    async def _admit(self) -> Admitted:
        req = self.request
        if req.allowance is not None:
            allowance = await in_thread(self.accountant, req.allowance)
            self.allowance_id, self.allowance_name = allowance.id, allowance.name
        estimate = Usage(input_tokens=self.prompt_tokens, output_tokens=self.max_output_tokens)
        rid = str(uuid.uuid4())
        if self.admissions is not None and req.allowance is None and req.task is None:
            self.admitted = await self._admit_on_loop(estimate, rid)
            if self.admitted is not None:
                return self.admitted
        try:
            self.admitted = await asyncio.to_thread(
                self.accountant.admit, user_id=req.user_id, provider=req.provider,
                model_id=req.model_id, estimate=estimate, allowance_id=self.allowance_id,
                enforce=req.task is None, chat_id=req.chat_id, message_id=req.message_id,
                task=req.task, api_key_id=req.api_key_id, entry_point=req.entry_point,
                reservation_id=rid)
        except TokenLimitExceededError as exc:
            facts = await in_thread(self.accountant,
                                    lambda s: refusal_facts(s, req.provider))
            raise refusal(exc, req.timezone, facts, self.allowance_name) from exc
        return self.admitted

    async def _admit_on_loop(self, estimate: Usage, rid: str) -> Admitted | None:
        """The one-limit admission on the event loop; None: admit in a worker thread
        (with the same reservation id, so nothing is held twice)."""
        assert self.admissions is not None
        req = self.request
        now = self.accountant.clock()
        if self.accountant.sweep_due(now):  # as every admission does, now and then
            await asyncio.to_thread(self.accountant.maybe_sweep, now)
        try:
            return await self.admissions.admit(
                user_id=req.user_id, provider=req.provider, model_id=req.model_id,
                estimate=estimate, now=now, reservation_id=rid, api_key_id=req.api_key_id,
                entry_point=req.entry_point, chat_id=req.chat_id,
                message_id=req.message_id)
        except Exception:  # the worker thread's admission decides, with its retries
            logger.warning("admission on the event loop failed; admitting in a worker "
                           "thread", exc_info=True)
            return None

    async def release(self) -> None:
        """Nothing was used (failed before any token): give the reservation back."""
        if self._closed or self.admitted is None:
            return
        self._closed = True
        rid = self.admitted.reservation_id
        await asyncio.shield(asyncio.to_thread(self.accountant.release, rid,
                                               defer_on_failure=True))

    async def settle(self, seen: Usage | None, status: str) -> Settlement | None:
        """Charge the request once: the server's usage if seen, else the estimate.

        ``status`` is ``completed``, ``stopped`` or ``error``; a completed request whose
        server sent no usage is stored as ``estimated``.
        """
        if self._closed or self.admitted is None:
            return self.settlement
        self._closed = True
        usage = self.usage_to_charge(seen)
        if usage is not seen:
            if status == "completed":
                status = "estimated"
                warn_no_usage_once(self.provider, self.request.model_id)
        admitted = self.admitted
        row_id = await asyncio.shield(self._settle(admitted, usage, status))
        # Same price as the ledger's (in force at admission); 0 when the ledger dropped a
        # duplicate (chat, message) or the reservation had expired meanwhile.
        charged = 0 if admitted.free or row_id is None else \
            charge(usage, admitted.price).micro_credits
        self.settlement = Settlement(usage, status, charged, row_id)
        return self.settlement

    async def _settle(self, admitted: Admitted, usage: Usage, status: str) -> int | None:
        if self.admissions is not None and admitted.one_limit:
            try:
                done = await self.admissions.settle(admitted.reservation_id, usage, status,
                                                    admitted.price)
            except Exception:  # the worker thread settles, with its retries and queue
                logger.warning("settlement on the event loop failed; settling in a worker "
                               "thread", exc_info=True)
                done = None
            if done is not None:
                if done.crossed_alerts():
                    await asyncio.to_thread(self.accountant.note_alerts, done,
                                            self.accountant.clock())
                return done.row_id
        return await asyncio.to_thread(
            self.accountant.settle, admitted.reservation_id, usage, status, admitted.price,
            defer_on_failure=True,  # never fail a finished answer; the charge is queued
            one_limit=admitted.one_limit)

    async def balance(self) -> BalanceReport:
        return await asyncio.to_thread(self.accountant.balance, self.request.user_id,
                                       allowance_id=self.allowance_id)
