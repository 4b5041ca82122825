"""Pydantic models of the JSON API (requests validated here, before any database work).

Credits are decimal strings in JSON (exact); instants are ISO 8601 with offset (UTC).
Whole-credit limits and price columns are integers, as the CLI takes them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..storage.reports import LedgerRow, SummaryRow

MAX_CREDITS = 10**12
"""Upper bound of any credit amount or token count accepted (fits every column)."""


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError("give a time zone offset, e.g. 2026-11-28T12:00:00Z")
    return value


Text = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")]
OptText = Annotated[str | None, Field(default=None, max_length=255,
                                      pattern=r"^[^\x00-\x1f\x7f]*$")]
Credits = Annotated[int, Field(ge=0, le=MAX_CREDITS, description="whole credits")]
PerTokens = Annotated[int, Field(gt=0, le=MAX_CREDITS, description="tokens the cost is for")]
Instant = Annotated[datetime | None, AfterValidator(_aware)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Me(BaseModel):
    user_id: str
    name: str
    role: str


class LimitOut(BaseModel):
    scope: str = Field(description="user, sponsor_user, sponsor_total, group_total, "
                                   "model_cap or provider_cap")
    target: str | None = Field(default=None, description="the capped model or provider, or "
                                                         "the team budget's credit group")
    limit: Decimal | None
    spent: Decimal
    reserved: Decimal
    remaining: Decimal | None
    window_start: datetime
    reset_at: datetime | None


class RateOut(BaseModel):
    requests_per_minute: int | None
    tokens_per_minute: int | None
    requests: int = Field(description="requests admitted in the current minute")
    tokens: int = Field(description="tokens held or used in the current minute")
    reset_at: datetime = Field(description="start of the next minute")


class BalanceOut(BaseModel):
    user_id: str
    allowance: str | None
    remaining: Decimal | None = Field(description="credits left under the binding limit "
                                                  "(spend caps bind only their model)")
    reset_at: datetime | None
    limits: list[LimitOut]
    rate: RateOut | None = Field(default=None, description="rate limits of the own "
                                                           "allowance; null: none")


class SummaryRowOut(BaseModel):
    key: str
    detail: str | None
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    credits: Decimal

    @classmethod
    def of(cls, row: SummaryRow) -> SummaryRowOut:
        return cls.model_validate(row, from_attributes=True)  # credits: a property


class SummaryOut(BaseModel):
    since: datetime
    until: datetime
    by: str
    user_id: str | None
    total: SummaryRowOut
    rows: list[SummaryRowOut]


class LedgerRowOut(BaseModel):
    id: int
    created_at: datetime
    user_id: str
    provider: str
    model_id: str
    sponsored_allowance_id: uuid.UUID | None
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    credits: Decimal
    status: str
    chat_id: str | None
    message_id: str | None
    task: str | None

    @classmethod
    def of(cls, row: LedgerRow) -> LedgerRowOut:
        return cls.model_validate(row, from_attributes=True)  # credits: a property


class LedgerPage(BaseModel):
    since: datetime
    until: datetime
    user_id: str | None
    offset: int
    limit: int
    total: int
    next_offset: int | None = Field(description="offset of the next page, null on the last")
    rows: list[LedgerRowOut]


class GroupIn(Strict):
    name: Text
    max_credit: Credits = Field(description="credits added to each member's allowance")
    description: OptText = None


class GroupPatch(Strict):
    new_name: OptText = None
    max_credit: Credits | None = None
    description: OptText = None


class GroupOut(BaseModel):
    id: uuid.UUID
    name: str
    max_credit: int
    description: str | None
    members: list[str] = Field(description="direct members (see /groups/{name}/limits for "
                                           "its Open WebUI link)")
    openwebui_group_id: str | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    total_credit_limit: int | None = Field(default=None, description="team budget: credits "
                                                                     "per window, all members")


class MemberIn(Strict):
    user_id: Text


class AllowanceIn(Strict):
    name: Text
    sponsor_id: OptText = None
    models: list[Text] = Field(min_length=1, max_length=200)
    total_credit_limit: Credits
    daily_credit_limit: Credits | None = Field(
        default=None, description="credits per user per budget window; null: none")
    expires_at: Instant = None


class AllowancePatch(Strict):
    new_name: OptText = None
    sponsor_id: OptText = None
    models: list[Text] | None = Field(default=None, min_length=1, max_length=200)
    total_credit_limit: Credits | None = None
    daily_credit_limit: Credits | None = None
    clear_daily_credit_limit: bool = False
    expires_at: Instant = None
    clear_expires_at: bool = False


class AllowanceOut(BaseModel):
    id: uuid.UUID
    name: str
    sponsor_id: str | None
    models: list[str]
    total_credit_limit: int
    daily_credit_limit: int | None
    creation_date: datetime
    expires_at: datetime | None
    spent: Decimal = Field(description="credits charged to it since creation")
    remaining: Decimal


class PriceIn(Strict):
    name: OptText = None
    input_cost_credits: Credits
    per_input_tokens: PerTokens
    output_cost_credits: Credits
    per_output_tokens: PerTokens
    cached_input_cost_credits: Credits | None = None
    per_cached_input_tokens: PerTokens | None = None
    cache_write_cost_credits: Credits | None = None
    per_cache_write_tokens: PerTokens | None = None
    effective_from: Instant = Field(default=None, description="default: now")


class PriceOut(BaseModel):
    provider: str
    model_id: str
    name: str | None
    input_cost_credits: int
    per_input_tokens: int
    output_cost_credits: int
    per_output_tokens: int
    cached_input_cost_credits: int | None
    per_cached_input_tokens: int | None
    cache_write_cost_credits: int | None
    per_cache_write_tokens: int | None
    source: str
    updated_at: datetime | None
    matched_model_id: str | None = Field(
        default=None, description="a resolved alias (dated id): the model it matched")


class SettingOut(BaseModel):
    key: str
    value: str
    default: str
    description: str


class SettingIn(Strict):
    value: Annotated[str, Field(max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")]


class Problem(BaseModel):
    detail: str


PerMinute = Annotated[int, Field(ge=1, le=MAX_CREDITS)]


class OpenWebUIGroupOut(BaseModel):
    id: str
    name: str
    members: int


class LinkIn(Strict):
    openwebui_group: Text = Field(description="the Open WebUI group's id or name")


class LinkOut(BaseModel):
    openwebui_group_id: str
    name: str | None = Field(description="null: the Open WebUI group was deleted (the link "
                                         "grants nothing)")
    exists: bool
    members: int = Field(description="its members, sub-groups' members included")


class CapIn(Strict):
    kind: Literal["model", "provider"]
    target: Text = Field(description="a model id (under any provider) or a provider")
    credit_limit: Credits = Field(description="credits per budget window")
    group: OptText = Field(default=None, description="a credit group; null: the base cap")


class CapOut(BaseModel):
    group: str | None
    kind: str
    target: str
    credit_limit: int


class GroupLimitsPatch(Strict):
    """Fields left out stay as they are; ``null`` clears one."""

    requests_per_minute: PerMinute | None = None
    tokens_per_minute: PerMinute | None = None
    total_credit_limit: Credits | None = None


class GroupLimitsOut(BaseModel):
    name: str
    openwebui_group: LinkOut | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    total_credit_limit: int | None
    caps: list[CapOut]
