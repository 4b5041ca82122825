"""One metered provider call: send after admission, relay the answer, settle in ``finally``.

Shared by every entry point; each formats the deltas its own way (Open WebUI's
``<think>`` tags and status line, the gateway's OpenAI chunks). The rules:

- a request failing before any token (a refused or unreachable provider) is released;
- a client that goes away while the provider thinks (``CancelledError``) is charged as
  ``stopped``: the prompt was sent and read;
- a stream that is stopped (``CancelledError`` or ``GeneratorExit`` in the generator)
  or fails mid-way is charged for what was used, with status ``stopped`` / ``error``;
- a completed answer is charged for the usage the server reported (else an estimate).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Literal, overload

import anyio
import httpx

from ..accounting.usage import Usage
from ..errors import ProviderError
from ..providers.client import ProviderStream, complete, open_stream
from ..providers.protocol import Completion, Delta, HTTPCall, WireProtocol
from .bill import Bill, Settlement


async def send(bill: Bill, client: httpx.AsyncClient, protocol: WireProtocol, call: HTTPCall,
               stream: bool) -> Completion | ProviderStream:
    """Send an admitted request: the whole answer, or the opened stream."""
    try:
        if not stream:
            return await complete(client, protocol, call, bill.provider)
        return await open_stream(client, protocol, call, bill.provider)
    except asyncio.CancelledError:
        # Disconnected while waiting for the answer: the prompt was sent and read.
        with anyio.CancelScope(shield=True):
            await bill.settle(None, "stopped")
        raise
    except Exception:
        await bill.release()  # failed before any token: nothing was used
        raise


async def finish(bill: Bill, answer: Completion) -> Settlement:
    """Charge a whole (non-streamed) answer."""
    bill.add_output(answer.reasoning + answer.text)
    settled = await bill.settle(answer.usage, "completed")
    assert settled is not None
    return settled


class AnswerEnd:
    """Yielded by ``metered_deltas(..., announce_end=True)`` once the provider's answer
    is complete and before its charge is written: ``usage`` is what will be charged."""

    def __init__(self, usage: Usage) -> None:
        self.usage = usage


@overload
def metered_deltas(stream: ProviderStream, bill: Bill, *,
                   announce_end: Literal[False] = False) -> AsyncGenerator[Delta, None]: ...


@overload
def metered_deltas(stream: ProviderStream, bill: Bill, *,
                   announce_end: Literal[True]) -> AsyncGenerator[Delta | AnswerEnd, None]: ...


async def metered_deltas(stream: ProviderStream, bill: Bill, *, announce_end: bool = False
                         ) -> AsyncGenerator[Delta | AnswerEnd, None]:
    """The stream's deltas; when it ends, ``bill.settlement`` holds the charge.

    ``announce_end``: yield an ``AnswerEnd`` between the last delta and the charge, so
    the caller can finish its answer while the charge is written (it must then keep
    iterating to the end: the charge is written by the generator).
    Close this generator (``contextlib.aclosing``) when the consumer stops early, so
    the charge is written at once rather than when the generator is collected.
    """
    status = "stopped"
    try:
        async for delta in stream.deltas():
            bill.add_output(delta.text)
            yield delta
        await stream.aclose()
        if announce_end:
            yield AnswerEnd(bill.usage_to_charge(stream.usage))
        await bill.settle(stream.usage, "completed")
    except ProviderError:
        status = "error"
        raise
    finally:
        # Shielded: a server framework cancelling the request's task scope (a client
        # disconnect) must not skip the charge.
        with anyio.CancelScope(shield=True):
            if bill.settlement is None:
                if status == "error" and stream.usage is None and bill.output_chars == 0:
                    await bill.release()  # failed before any token: nothing was used
                else:
                    await bill.settle(stream.usage, status)
            await stream.aclose()
