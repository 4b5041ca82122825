"""Refusal messages now live in :mod:`..metering.refusal` (shared with the gateway)."""

from ..metering.refusal import (
    RefusalFacts,
    format_reset,
    refusal,
    refusal_facts,
    refusal_message,
)

__all__ = ["RefusalFacts", "format_reset", "refusal", "refusal_facts", "refusal_message"]
