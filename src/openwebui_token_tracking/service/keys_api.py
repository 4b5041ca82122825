"""``/api/v1/keys``: per-key usage and budgets (a key capped below its owner's allowance).

Users see and lower the budgets of their own keys; admins see every key and may set,
raise or remove any budget. Keys are named by their non-secret id (``key-`` and 16 hex
digits of the key's SHA-256), never by the key.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ..accounting.money import MAX_CREDITS, credits_to_micro, micro_to_credits
from ..storage import key_budgets
from ..storage.settings_store import budget_settings
from .api import ERRORS
from .auth import AuthError, Principal
from .deps import AdminWrite, Caller, ServiceState, State, Write, visible_user

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["keys"])


class KeyOut(BaseModel):
    key_id: str
    user_id: str
    current: bool = Field(description="the owner's current Open WebUI API key")
    limit: Decimal | None = Field(description="credits per window; null: no key budget")
    spent: Decimal = Field(description="credits charged through the key this window")
    reserved: Decimal
    remaining: Decimal | None
    requests: int
    set_by: str | None
    reset_at: datetime


class KeyBudgetIn(BaseModel):
    limit: Decimal = Field(ge=0, le=MAX_CREDITS, decimal_places=6,
                           description="credits the key may spend per budget window")


def _out(o: key_budgets.KeyOverview) -> KeyOut:
    st = o.state
    return KeyOut(
        key_id=st.key_id, user_id=st.user_id, current=o.current,
        limit=None if st.limit_micro is None else micro_to_credits(st.limit_micro),
        spent=micro_to_credits(st.spent_micro), reserved=micro_to_credits(st.reserved_micro),
        remaining=None if st.limit_micro is None else micro_to_credits(
            st.limit_micro - st.spent_micro - st.reserved_micro),
        requests=st.requests, set_by=st.set_by, reset_at=st.window_end)


def keys_of(st: ServiceState, user_id: str | None) -> list[KeyOut]:
    now = st.now()
    return st.accountant.run(lambda s: [_out(o) for o in key_budgets.key_overview(
        s, user_id, now, budget_settings(s))], read_only=True)


UserQuery = Annotated[str | None, Query(max_length=255, description="admins only: any user")]


@router.get("/keys", response_model=list[KeyOut])
def list_keys(st: State, caller: Caller, user_id: UserQuery = None) -> list[KeyOut]:
    """API keys with their budget and spend this window (yours; admins: anyone's)."""
    return keys_of(st, visible_user(caller, user_id))


def _owned(s: Session, caller: Principal, key_id: str) -> str:
    owner = key_budgets.owner_of(s, key_id)
    if not caller.may_see(owner):
        raise AuthError("you may only change the budgets of your own keys", 403)
    return owner


@router.put("/keys/{key_id}/budget", response_model=KeyOut)
def set_key_budget(key_id: str, body: KeyBudgetIn, st: State, caller: Write) -> KeyOut:
    """Cap a key per window. Its owner may only lower the cap; admins may set any."""
    now = st.now()

    def work(s: Session) -> KeyOut:
        owner = _owned(s, caller, key_id)
        key_budgets.set_budget(s, api_key_id=key_id, owner_id=owner,
                               limit_micro=credits_to_micro(body.limit), by=caller.user_id,
                               by_admin=caller.is_admin, now=now)
        [found] = [o for o in key_budgets.key_overview(s, owner, now, budget_settings(s))
                   if o.state.key_id == key_id]
        return _out(found)
    return st.run(work)


@router.delete("/keys/{key_id}/budget", status_code=204)
def clear_key_budget(key_id: str, st: State, _: AdminWrite) -> Response:
    """Remove a key's cap (admins only)."""
    st.run(lambda s: key_budgets.clear_budget(s, key_id))
    return Response(status_code=204)
