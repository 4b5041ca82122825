"""How limits from several sources combine, and the one-minute rate window.

A user's own allowance has several kinds of limit; each is enforced on its own, and a
request must fit all of them:

- **allowance**: the base allowance plus the allowance of every credit group the user
  is in (directly or through a linked Open WebUI group), per budget window;
- **rate limits**: requests and tokens per minute. The default (a setting; 0 is off)
  applies unless one of the user's groups overrides it; with several overrides the
  most generous (largest) wins, so a group can raise or lower its members' limit;
- **spend caps**: credits per budget window on one model or provider. A group's cap
  replaces the base cap for its members; with several groups capping the same model
  the most generous (largest) wins;
- **team budgets**: a group's total per window over all its members; each of the
  user's groups that has one must have room.

Rate windows are fixed UTC minutes ``[hh:mm:00, hh:mm+1:00)``: a request counts in the
minute it was admitted, and its tokens (the estimate while in flight, the actual count
once settled) stay in that minute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from .budget import Window

K = TypeVar("K")
MINUTE = timedelta(minutes=1)


def most_generous(default: int | None, overrides: Iterable[int | None]) -> int | None:
    """The largest override if any group gives one, else ``default`` (None: no limit)."""
    given = [v for v in overrides if v is not None]
    return max(given) if given else default


def effective_caps(base: Mapping[K, int], groups: Iterable[Mapping[K, int]]) -> dict[K, int]:
    """Caps per target: a group's cap replaces the base cap; several groups: the largest."""
    from_groups: dict[K, int] = {}
    for caps in groups:
        for target, value in caps.items():
            from_groups[target] = max(value, from_groups.get(target, value))
    return {**base, **from_groups}


def minute_window(now: datetime) -> Window:
    """The fixed one-minute rate window containing ``now`` (aware)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (UTC), not a naive one")
    start = now.astimezone(UTC).replace(second=0, microsecond=0)
    return Window(start, start + MINUTE)


def rate_admits(*, requests: int, tokens: int, stale: bool, estimate_tokens: int,
                requests_per_minute: int | None, tokens_per_minute: int | None) -> bool:
    """Whether one more request with ``estimate_tokens`` fits the minute's rate limits.

    ``stale``: the counted minute is over, so it starts from zero. The conditional
    update in ``storage.rate_limits`` implements exactly this rule.
    """
    used_requests, used_tokens = (0, 0) if stale else (requests, tokens)
    if requests_per_minute is not None and used_requests + 1 > requests_per_minute:
        return False
    return tokens_per_minute is None or used_tokens + estimate_tokens <= tokens_per_minute
