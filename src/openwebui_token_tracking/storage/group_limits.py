"""A credit group's rate-limit overrides and team budget.

- ``requests_per_minute`` / ``tokens_per_minute``: replace the default rate limits for
  the group's members; a member of several groups gets the most generous
  (``accounting.limits``); None: no override.
- ``total_credit_limit``: credits per budget window for all members together (their own
  allowance's spend, a team budget), enforced as one more counter (``group_total``);
  None: no team budget.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.orm import Session

from ..errors import InvalidInputError
from .caps import check_credits
from .groups import get_group
from .schema import CreditGroup


class Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()
"""Leave a limit as it is (None clears it)."""


def _per_minute(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be a whole number, got {value!r}")
    if not 1 <= value <= 10**12:
        raise InvalidInputError(f"{what} must be from 1 to 10^12 (or none), got {value}")
    return value


def set_group_limits(session: Session, name: str, *,
                     requests_per_minute: int | None | Unchanged = UNCHANGED,
                     tokens_per_minute: int | None | Unchanged = UNCHANGED,
                     total_credit_limit: int | None | Unchanged = UNCHANGED) -> CreditGroup:
    """Change the given limits of credit group ``name`` (None clears one)."""
    if all(v is UNCHANGED for v in (requests_per_minute, tokens_per_minute,
                                    total_credit_limit)):
        raise InvalidInputError("give at least one of: requests per minute, tokens per "
                                "minute, total budget")
    group = get_group(session, name)
    if not isinstance(requests_per_minute, Unchanged):
        group.requests_per_minute = _per_minute(requests_per_minute, "requests per minute")
    if not isinstance(tokens_per_minute, Unchanged):
        group.tokens_per_minute = _per_minute(tokens_per_minute, "tokens per minute")
    if not isinstance(total_credit_limit, Unchanged):
        group.total_credit_limit = (None if total_credit_limit is None
                                    else check_credits(total_credit_limit, "total budget"))
    session.flush()
    return group
