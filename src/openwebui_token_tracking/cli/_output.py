"""Readable tables for people, JSON for scripts.

JSON conventions: credit amounts (``Decimal``) are strings so they stay exact
(``"12.5"``), token counts and whole-credit limits are numbers, instants are ISO 8601
UTC strings, ids are strings.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import click

T = TypeVar("T")


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def emit_json(data: Any) -> None:
    click.echo(json.dumps(jsonable(data), indent=2))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               empty: str = "(none)") -> None:
    """Columns padded to their widest cell; numbers right-aligned."""
    if not rows:
        click.echo(empty)
        return
    text = [[cell(v) for v in row] for row in rows]
    numeric = [all(isinstance(row[i], int | Decimal) and not isinstance(row[i], bool)
                   for row in rows if row[i] is not None) for i in range(len(headers))]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric, strict=True)).rstrip()

    click.echo(line(headers))
    click.echo(line(["-" * w for w in widths]))
    for r in text:
        click.echo(line(r))


def per_label(per_tokens: int) -> str:
    """1000000 -> ``1M``, 100000000 -> ``100M``, 1000 -> ``1K``."""
    for size, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "K")):
        if per_tokens % size == 0:
            return f"{per_tokens // size:,}{suffix}"
    return f"{per_tokens:,}"


def rate(cost: int | None, per: int | None) -> str:
    if cost is None or per is None:
        return "-"
    return f"{cost:,}/{per_label(per)}"


PROGRESS_MIN = 50
"""Fewer items than this finish too fast to need a progress bar."""


def progress(items: Iterable[T], *, label: str, length: int) -> ContextManager[Iterable[T]]:
    """A progress bar on stderr for long runs (stdout stays clean for data)."""
    if length < PROGRESS_MIN:
        return nullcontext(items)
    return click.progressbar(items, length=length, label=label, file=sys.stderr)
