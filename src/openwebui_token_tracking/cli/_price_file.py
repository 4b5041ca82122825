"""The price file (0.1.10's ``models.json`` format plus cache rates): I/O models.

A file is a JSON list of objects with ``provider, id, name, input_cost_credits,
per_input_tokens, output_cost_credits, per_output_tokens`` and optionally
``cached_input_cost_credits, per_cached_input_tokens, cache_write_cost_credits,
per_cache_write_tokens``. Costs are whole credits (0 allowed: a free model), ``per_*``
positive whole token counts. The whole file is validated before anything is written.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ..errors import InvalidInputError
from ..storage.prices import PriceInput
from ..storage.schema import ModelPricing

Cost = Annotated[int, Field(ge=0, strict=True)]
Per = Annotated[int, Field(gt=0, strict=True)]
Text = Annotated[str, Field(min_length=1, max_length=255)]


class PriceRecord(BaseModel):
    """One model's price as admins write it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    provider: Text
    id: Text
    name: Annotated[str, Field(max_length=255)] | None = None
    input_cost_credits: Cost
    per_input_tokens: Per
    output_cost_credits: Cost
    per_output_tokens: Per
    cached_input_cost_credits: Cost | None = None
    per_cached_input_tokens: Per | None = None
    cache_write_cost_credits: Cost | None = None
    per_cache_write_tokens: Per | None = None

    @model_validator(mode="after")
    def _pairs(self) -> PriceRecord:
        self.price_input()  # the storage rules: a cache rate needs both of its fields
        return self

    @property
    def key(self) -> tuple[str, str]:
        return self.provider, self.id

    def price_input(self) -> PriceInput:
        return PriceInput(**self.model_dump(exclude={"provider", "id", "name"}))

    @classmethod
    def from_row(cls, row: ModelPricing) -> PriceRecord:
        return cls.model_validate({"provider": row.provider, "id": row.id, "name": row.name,
                                   **PriceInput.from_row(row).as_columns()})

    def export(self) -> dict[str, Any]:
        """The file form: the cache fields only when set, as 0.1.10 files look."""
        return self.model_dump(exclude_none=True)


_file = TypeAdapter(list[PriceRecord])


def _describe(error: dict[str, Any], records: Any) -> str:
    loc = list(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        return f"not valid JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    if not loc:
        return f"{error['msg']} (expected a JSON list of model prices)"
    where = f"entry {loc[0] + 1}" if isinstance(loc[0], int) else str(loc[0])
    if isinstance(loc[0], int) and isinstance(records, list) and loc[0] < len(records):
        item = records[loc[0]]
        if isinstance(item, dict) and "provider" in item and "id" in item:
            where += f" ({item['provider']}/{item['id']})"
    field = ".".join(str(p) for p in loc[1:])
    return f"{where}: {field + ': ' if field else ''}{error['msg']}"


def parse_price_file(data: str | bytes, source: str) -> list[PriceRecord]:
    """Validate a whole price file; ``InvalidInputError`` names the first problem."""
    try:
        records = _file.validate_json(data)
    except ValidationError as exc:
        errors = exc.errors()
        try:
            raw = json.loads(data)
        except ValueError:
            raw = None
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise InvalidInputError(f"{source}: {_describe(dict(errors[0]), raw)}{more}") from exc
    seen: set[tuple[str, str]] = set()
    for number, record in enumerate(records, 1):
        if record.key in seen:
            raise InvalidInputError(
                f"{source}: entry {number} ({record.provider}/{record.id}) repeats a model "
                "listed earlier in the file")
        seen.add(record.key)
    return records
