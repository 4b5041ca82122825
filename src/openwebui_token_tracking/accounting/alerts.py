"""Budget alert thresholds: which percentages of a limit a charge crossed.

A threshold is a whole percentage of a limit (80 means 80 %). A charge that takes a
limit's spend from ``before`` to ``after`` crosses threshold ``p`` when
``before < p% of limit <= after``. Spend only grows within a window, so each threshold
is crossed at most once per window and limit; amounts are integer micro-credits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .budget import Window
from .money import micro_to_credits

DEFAULT_THRESHOLDS = (80, 100)
MAX_THRESHOLD = 1000
"""Thresholds above 100 % (overspend by late settlements) are allowed up to this."""


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"80, 100"`` as ``(80, 100)``: sorted, unique, each 1..1000; empty: no alerts.

    Raises ``ValueError`` naming the bad part.
    """
    values = set()
    for part in text.replace(";", ",").split(","):
        part = part.strip().removesuffix("%").strip()
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= MAX_THRESHOLD:
            raise ValueError(
                f"a threshold must be a whole percentage from 1 to {MAX_THRESHOLD}, got {part!r}")
        values.add(int(part))
    return tuple(sorted(values))


def threshold_micro(limit_micro: int, percent: int) -> int:
    """The spend (micro-credits, rounded up) at which ``percent`` of the limit is reached."""
    return -(-limit_micro * percent // 100)


def crossed_thresholds(before: int, after: int, limit_micro: int | None,
                       thresholds: tuple[int, ...]) -> list[int]:
    """The thresholds (percent) that spend going from ``before`` to ``after`` crossed.

    Nothing for an unlimited or zero limit (nothing to measure against).
    """
    if not limit_micro or limit_micro <= 0 or after <= before:
        return []
    return [p for p in thresholds if before * 100 < limit_micro * p <= after * 100]


EVENT_TYPE = "budget.threshold_crossed"
TEST_EVENT_TYPE = "budget.test"


def _credits(micro: int) -> str:
    return format(micro_to_credits(micro).normalize(), "f")


def event_payload(*, event_key: str, scope: str, subject: dict[str, str | None],
                  percent: int, thresholds: tuple[int, ...], limit_micro: int,
                  spent_micro: int, window: Window | None, instant: datetime) -> dict[str, Any]:
    """The JSON body of an alert: credits as exact decimal strings, instants ISO UTC.

    ``window`` None: a limit over all time (a sponsored allowance's total).
    """
    return {
        "type": EVENT_TYPE,
        "id": event_key,
        "instant": instant.astimezone(UTC).isoformat(),
        "scope": scope,
        "subject": subject,
        "threshold_percent": percent,
        "thresholds": list(thresholds),
        "threshold": _credits(threshold_micro(limit_micro, percent)),
        "limit": _credits(limit_micro),
        "spent": _credits(spent_micro),
        "remaining": _credits(limit_micro - spent_micro),
        "window": None if window is None else {
            "start": window.start.astimezone(UTC).isoformat(),
            "end": window.end.astimezone(UTC).isoformat()},
    }
