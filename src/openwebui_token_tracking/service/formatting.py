"""Jinja filters: credits and instants as people read them."""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal

from jinja2 import Environment


def credits(value: Decimal | int | None) -> str:
    if value is None:
        return "unlimited"
    number = Decimal(value).quantize(Decimal("0.01"))
    return f"{number:,}"


def local(value: datetime | None, tz: tzinfo | None = None) -> str:
    if value is None:
        return "—"
    shown = value.astimezone(tz) if tz else value
    return shown.strftime("%Y-%m-%d %H:%M %Z")


def cell(value: object) -> str:
    if isinstance(value, Decimal):
        return f"{value:,}"
    return "" if value is None else str(value)


def install_filters(env: Environment) -> None:
    env.filters.update(credits=credits, local=local, cell=cell)
