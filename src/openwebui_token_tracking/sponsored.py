"""0.1.10's sponsored allowance functions, as thin wrappers over ``storage.sponsors``.

Fixed: names are unique; limits are validated; an allowance may expire; a missing
allowance raises ``NotFoundError`` (a ``KeyError``; for ``update``/``delete`` also a
``ValueError``, which 0.1.10 raised there).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .accountant import transaction, utcnow
from .errors import InvalidInputError, NotFoundError
from .storage import sponsors
from .storage.schema import SponsoredAllowance


class SponsoredAllowanceNotFoundError(NotFoundError, InvalidInputError):
    """No such allowance (a ``KeyError`` and a ``ValueError``, for 0.1.10 callers)."""


class BaseModelRef(str):
    """A covered model id that also answers 0.1.10's ``.base_model_id``."""

    @property
    def base_model_id(self) -> str:
        return str(self)


def as_dict(a: SponsoredAllowance) -> dict[str, Any]:
    return {
        "id": str(a.id), "name": a.name, "sponsor_id": a.sponsor_id,
        "total_credit_limit": a.total_credit_limit,
        "daily_credit_limit": a.daily_credit_limit,
        "base_models": [BaseModelRef(m) for m in sponsors.covered_models(a)],
        "creation_date": a.creation_date,
        "expires_at": a.expires_at,
    }


def _find(s: Any, allowance_id: str | None, name: str | None) -> SponsoredAllowance:
    if allowance_id is None and name is None:
        raise InvalidInputError("give allowance_id or name")
    found = sponsors.find_allowance(s, name=name, allowance_id=allowance_id)
    if found is None:
        raise SponsoredAllowanceNotFoundError(
            f"sponsored allowance {allowance_id or name!r} does not exist")
    return found


def create_sponsored_allowance(database_url: str | None, sponsor_id: str, name: str,
                               models: Iterable[str], total_credit_limit: int,
                               daily_credit_limit: int | None,
                               expires_at: datetime | None = None) -> dict[str, Any]:
    with transaction(database_url) as s:
        return as_dict(sponsors.create_allowance(
            s, name=name, sponsor_id=sponsor_id, models=models,
            total_credit_limit=total_credit_limit, daily_credit_limit=daily_credit_limit,
            now=utcnow(), expires_at=expires_at))


def delete_sponsored_allowance(database_url: str | None = None, allowance_id: str | None = None,
                               name: str | None = None) -> None:
    with transaction(database_url) as s:
        sponsors.delete_allowance(s, _find(s, allowance_id, name))


def get_sponsored_allowance(database_url: str | None = None, name: str | None = None,
                            id: str | None = None) -> dict[str, Any]:
    with transaction(database_url) as s:
        return as_dict(sponsors.get_allowance(s, name=name, allowance_id=id))


def get_sponsored_allowances(database_url: str | None = None,
                             sponsor_id: str | None = None) -> list[dict[str, Any]]:
    with transaction(database_url) as s:
        return [as_dict(a) for a in sponsors.list_allowances(s, sponsor_id)]


def update_sponsored_allowance(database_url: str | None = None, allowance_id: str | None = None,
                               name: str | None = None, new_name: str | None = None,
                               sponsor_id: str | None = None,
                               models: Iterable[str] | None = None,
                               total_credit_limit: int | None = None,
                               daily_credit_limit: int | None = None) -> None:
    with transaction(database_url) as s:
        allowance = _find(s, allowance_id, name)
        changes: dict[str, Any] = {}
        if daily_credit_limit is not None:
            changes["daily_credit_limit"] = daily_credit_limit
        sponsors.update_allowance(s, allowance, new_name=new_name, sponsor_id=sponsor_id,
                                  models=models, total_credit_limit=total_credit_limit,
                                  **changes)
