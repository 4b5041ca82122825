"""``/metrics`` in the Prometheus text format (version 0.0.4), read from the ledger.

Charges are exact sums of the ledger; refusals come from the refusal counts admission
keeps (``storage.refusals``). Both are labelled by ``entry_point``: ``pipe`` (tracked
pipes), ``filter`` (the usage filter), ``gateway`` (``/v1``), ``unknown`` (rows written
before 0.2's gateway, and the 0.1.10 API).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from ..accounting.money import MICRO, micro_to_credits
from ..storage import refusals, reports, sponsors
from . import queries

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TOKEN_KINDS = ("input", "cached_input", "cache_write", "output", "reasoning")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def _refusal_labels(r: refusals.RefusalTotal) -> str:
    return _labels(reason=r.reason, provider=r.provider, model=r.model_id,
                   entry_point=r.entry_point)


def render(session: Session, now: datetime) -> str:
    rows = queries.charge_totals(session)
    out: list[str] = []
    out += _family(
        "tt_credits_charged_total", "counter",
        "Credits charged, by provider, model and entry point (pipe, filter, gateway).",
        (f"tt_credits_charged_total"
         f"{_labels(provider=r.provider, model=r.model_id, entry_point=r.entry_point)} "
         f"{micro_to_credits(r.charged_micro)}" for r in rows))
    out += _family(
        "tt_requests_charged_total", "counter",
        "Requests charged, by provider, model and entry point.",
        (f"tt_requests_charged_total"
         f"{_labels(provider=r.provider, model=r.model_id, entry_point=r.entry_point)} "
         f"{r.requests}" for r in rows))
    out += _family(
        "tt_tokens_charged_total", "counter",
        "Tokens charged, by provider, model, entry point and kind (input, cached_input, "
        "cache_write, output, reasoning).",
        (f"tt_tokens_charged_total"
         f"{_labels(provider=r.provider, model=r.model_id, entry_point=r.entry_point, kind=k)} "
         f"{r.tokens[k]}" for r in rows for k in TOKEN_KINDS))
    out += _family(
        "tt_requests_refused_total", "counter",
        "Requests refused before reaching a provider, by reason (user_limit, "
        "sponsored_user_limit, sponsored_total_limit, api_key_limit, allowance_expired, "
        "model_cap, provider_cap, group_budget, rate_limit_requests, rate_limit_tokens, "
        "unpriced_model, model_not_covered), provider, model and entry point.",
        (f"tt_requests_refused_total{_refusal_labels(r)} {r.count}"
         for r in refusals.refusal_totals(session)))
    count, held, expired = queries.open_reservations(session, now)
    out += _family("tt_reservations_open", "gauge", "Reservations of requests in flight.",
                   [f"tt_reservations_open {count}"])
    out += _family("tt_reservations_open_credits", "gauge",
                   "Credits held by open reservations.",
                   [f"tt_reservations_open_credits {micro_to_credits(held)}"])
    out += _family("tt_reservations_expired", "gauge",
                   "Open reservations past their expiry (charged at estimate on next use).",
                   [f"tt_reservations_expired {expired}"])
    spent = reports.spent_by_allowance(session)
    allowances = sponsors.list_allowances(session)
    out += _family(
        "tt_sponsored_allowance_remaining_credits", "gauge",
        "Credits left of each sponsored allowance's total limit.",
        (f"tt_sponsored_allowance_remaining_credits{_labels(allowance=a.name)} "
         f"{micro_to_credits(a.total_credit_limit * MICRO - spent.get(str(a.id), 0))}"
         for a in allowances))
    out += _family(
        "tt_sponsored_allowance_limit_credits", "gauge",
        "Total credit limit of each sponsored allowance.",
        (f"tt_sponsored_allowance_limit_credits{_labels(allowance=a.name)} "
         f"{a.total_credit_limit}" for a in allowances))
    return "\n".join(out) + "\n"
