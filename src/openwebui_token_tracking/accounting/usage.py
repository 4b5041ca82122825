"""Token usage of one request, in disjoint kinds that are each billed at one rate."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one request, split so that no token is counted twice.

    - ``input_tokens``: prompt tokens read fresh (not from cache, not written to cache)
    - ``cached_input_tokens``: prompt tokens read from the provider's cache
    - ``cache_write_tokens``: prompt tokens written to the provider's cache
    - ``output_tokens``: visible completion tokens
    - ``reasoning_tokens``: hidden reasoning/thinking tokens (billed at the output rate)

    Providers report overlapping totals (OpenAI's ``prompt_tokens`` includes cached
    tokens, its ``completion_tokens`` includes reasoning); the provider adapters split
    them before building a ``Usage``.
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{f.name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"{f.name} must not be negative, got {value}")

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )

    @property
    def prompt_tokens(self) -> int:
        """All prompt tokens, whatever their cache state (0.1.10's ``prompt_tokens``)."""
        return self.input_tokens + self.cached_input_tokens + self.cache_write_tokens

    @property
    def response_tokens(self) -> int:
        """All generated tokens (0.1.10's ``response_tokens``)."""
        return self.output_tokens + self.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.response_tokens

    def is_empty(self) -> bool:
        return self.total_tokens == 0
