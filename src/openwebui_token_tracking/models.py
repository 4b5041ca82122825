"""I/O models (pydantic) shared by the compatible API and the CLI."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .storage.prices import PriceInput


class ModelPricingSchema(BaseModel):
    """A model's price as 0.1.10 wrote it, plus optional cache rates.

    Costs are whole credits per ``per_*_tokens`` tokens; zero costs make a free model.
    """

    model_config = ConfigDict(from_attributes=True)

    provider: str = Field(min_length=1)
    id: str = Field(min_length=1)
    name: str
    input_cost_credits: int = Field(ge=0)
    per_input_tokens: int = Field(gt=0)
    output_cost_credits: int = Field(ge=0)
    per_output_tokens: int = Field(gt=0)
    cached_input_cost_credits: int | None = Field(default=None, ge=0)
    per_cached_input_tokens: int | None = Field(default=None, gt=0)
    cache_write_cost_credits: int | None = Field(default=None, ge=0)
    per_cache_write_tokens: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _pairs(self) -> ModelPricingSchema:
        self.price_input()  # raises InvalidInputError (a ValueError) on a half-given pair
        return self

    def price_input(self) -> PriceInput:
        return PriceInput(
            self.input_cost_credits, self.per_input_tokens, self.output_cost_credits,
            self.per_output_tokens, self.cached_input_cost_credits,
            self.per_cached_input_tokens, self.cache_write_cost_credits,
            self.per_cache_write_tokens,
        )
