"""A pipe's or filter's request as a metered bill (the money side is :mod:`..metering`)."""

from __future__ import annotations

from ..accountant import Accountant
from ..metering.bill import (
    Bill,
    MeteredRequest,
    Settlement,
    _warned_no_usage,
    in_thread,
    warn_no_usage_once,
)
from .context import RequestContext
from .sponsorship import resolve_binding

__all__ = ["Bill", "Settlement", "_warned_no_usage", "bill_for", "in_thread",
           "warn_no_usage_once"]


def bill_for(accountant: Accountant, provider: str, ctx: RequestContext, prompt_tokens: int,
             max_output_tokens: int, entry_point: str) -> Bill:
    """The bill of an Open WebUI request (its workspace model may bind an allowance)."""
    binding = ctx.binding
    request = MeteredRequest(
        user_id=ctx.user_id, provider=provider, model_id=ctx.model_id,
        timezone=ctx.timezone, entry_point=entry_point, task=ctx.task,
        chat_id=ctx.chat_id, message_id=ctx.message_id,
        allowance=None if binding is None else (lambda s: resolve_binding(s, binding)))
    return Bill(accountant, request, prompt_tokens, max_output_tokens)
