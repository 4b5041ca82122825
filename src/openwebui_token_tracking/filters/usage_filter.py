"""A filter for deployments that keep Open WebUI's native connections (no tracked pipe).

An admin's Function is two lines::

    from openwebui_token_tracking.filters.usage_filter import UsageFilter
    Filter = UsageFilter

``inlet`` refuses a request when the user's limit cannot cover its estimate (it
reserves and immediately releases, so the check is the ledger's atomic admission);
background tasks are never refused. ``outlet`` charges the usage Open WebUI reports
on the answer (``usage`` of the last assistant message), or an estimate from its text.

What it cannot see, honestly:

- **stopped generations**: Open WebUI calls ``outlet`` only when an answer completes
  in the browser; a Stop, a closed tab or a failed stream is never charged;
- **API clients**: ``outlet`` runs on the web UI's "chat completed" event, which
  programmatic ``/api/chat/completions`` callers do not send;
- **background tasks** (titles, tags, follow-ups) never pass ``outlet``: not charged;
- **exact usage** only when the connection reports it (OpenAI-style ``usage``);
  otherwise the row is an estimate (``estimated``), and concurrent requests are not
  held back by an in-flight reservation as the tracked pipes' are.

Use the tracked pipes where exact, complete charging matters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from ..accountant import Accountant
from ..accounting.usage import Usage
from ..errors import TokenTrackingError
from ..metering import FILTER
from ..openwebui.billing import bill_for
from ..openwebui.context import RequestContext, task_of, user_timezone
from ..openwebui.sponsorship import binding_from_metadata, resolve_binding
from ..openwebui.valves import DEFAULT_OUTPUT_ESTIMATE, SECRET
from ..providers.content import text_of
from ..providers.estimate import prompt_tokens, tokens_for_text
from ..providers.openai_chat import usage_from_openai
from ..providers.protocol import completion_usage, token_count
from ..storage.engine import default_database_url

logger = logging.getLogger(__name__)


def base_model_id(body: Mapping[str, Any], metadata: Mapping[str, Any] | None) -> str:
    """The model actually run: a workspace model's base model, else ``body["model"]``."""
    info = ((metadata or {}).get("model") or {}).get("info") or {}
    return str(info.get("base_model_id") or body.get("model") or "")


def reported_usage(message: Mapping[str, Any]) -> Usage | None:
    """Usage Open WebUI stored on an answer: OpenAI-style, or Ollama's counters."""
    info: Mapping[str, Any] = message.get("info") or {}
    if not isinstance(info, Mapping):
        info = {}
    raw = message.get("usage") or info.get("usage") or info
    if not isinstance(raw, Mapping):
        return None
    if "prompt_tokens" in raw or "completion_tokens" in raw:
        return usage_from_openai(raw)
    if "prompt_eval_count" in raw or "eval_count" in raw:
        return Usage(input_tokens=token_count(raw.get("prompt_eval_count")),
                     output_tokens=token_count(raw.get("eval_count")))
    if "input_tokens" in raw or "output_tokens" in raw:
        return Usage(input_tokens=token_count(raw.get("input_tokens")),
                     output_tokens=token_count(raw.get("output_tokens")))
    return None


class UsageFilter:
    """Limit (inlet) and charge (outlet) requests over Open WebUI's own connections."""

    class Valves(BaseModel):
        priority: int = Field(default=0, description="Filter order (lower runs first)")
        DATABASE_URL: str = Field(default="", description="Token-tracking database "
                                  "(empty: Open WebUI's DATABASE_URL)",
                                  json_schema_extra=SECRET)
        PROVIDER: str = Field(default="openai", description="Provider whose prices apply")
        DEFAULT_MAX_OUTPUT_TOKENS: int = Field(default=DEFAULT_OUTPUT_ESTIMATE, ge=1)

    def __init__(self) -> None:
        self.valves = self.Valves()
        self._accountants: dict[str, Accountant] = {}

    async def accountant(self) -> Accountant:
        url = self.valves.DATABASE_URL.strip() or default_database_url()
        if url not in self._accountants:
            self._accountants[url] = await asyncio.to_thread(Accountant, url)
        return self._accountants[url]

    async def inlet(self, body: dict[str, Any], __user__: dict[str, Any] | None = None,
                    __metadata__: dict[str, Any] | None = None, __task__: Any = None
                    ) -> dict[str, Any]:
        """Raise a limit refusal (Open WebUI shows it) when the user is over the limit."""
        if __user__ is None or not __user__.get("id") or task_of(__task__, __metadata__):
            return body
        ctx = RequestContext(
            model_id=base_model_id(body, __metadata__), requested_model=str(body.get("model")),
            user_id=str(__user__["id"]), timezone=user_timezone(__user__), stream=False,
            task=None, chat_id=None, message_id=None,
            binding=binding_from_metadata(__metadata__))
        max_out = body.get("max_tokens")
        bill = bill_for(await self.accountant(), self.valves.PROVIDER, ctx,
                        prompt_tokens(body.get("messages") or []),
                        max_out if isinstance(max_out, int) and max_out > 0
                        else self.valves.DEFAULT_MAX_OUTPUT_TOKENS, FILTER)
        await bill.admit()
        await bill.release()
        return body

    async def outlet(self, body: dict[str, Any], __user__: dict[str, Any] | None = None,
                     __metadata__: dict[str, Any] | None = None) -> dict[str, Any]:
        """Charge the finished answer; never fails the chat (errors are logged)."""
        user_id = (__user__ or {}).get("id")
        answers = [m for m in body.get("messages") or []
                   if isinstance(m, Mapping) and m.get("role") == "assistant"]
        if not user_id or not answers:
            return body
        try:
            await self._charge(body, str(user_id), answers[-1], __metadata__)
        except TokenTrackingError as exc:
            logger.error("could not charge user %s for model %s: %s", user_id,
                         body.get("model"), exc)
        return body

    async def _charge(self, body: Mapping[str, Any], user_id: str,
                      answer: Mapping[str, Any], metadata: Mapping[str, Any] | None) -> None:
        acc = await self.accountant()
        usage = completion_usage(lambda: reported_usage(answer), "Open WebUI's answer")
        status = "completed"
        if usage is None or usage.is_empty():
            prompt = [m for m in body.get("messages") or [] if m is not answer]
            usage = Usage(input_tokens=prompt_tokens(prompt),
                          output_tokens=tokens_for_text(text_of(answer.get("content"))))
            status = "estimated"
        allowance_id = None
        binding = binding_from_metadata(metadata)
        if binding is not None:
            allowance = await asyncio.to_thread(acc.run, lambda s: resolve_binding(s, binding))
            allowance_id = allowance.id
        await asyncio.to_thread(
            acc.record, user_id=user_id, provider=self.valves.PROVIDER,
            model_id=base_model_id(body, metadata), usage=usage, allowance_id=allowance_id,
            status=status, chat_id=body.get("chat_id"),
            message_id=answer.get("id") or body.get("id"), entry_point=FILTER,
            defer_on_failure=True)


Filter = UsageFilter
