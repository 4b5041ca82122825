"""Open WebUI glue: Open WebUI's pipe/action/filter arguments -> accounting calls."""

from .pipe import TrackedPipe
from .tracked import (
    AnthropicTrackedPipe,
    GoogleTrackedPipe,
    MistralTrackedPipe,
    OpenAITrackedPipe,
)

__all__ = [
    "AnthropicTrackedPipe",
    "GoogleTrackedPipe",
    "MistralTrackedPipe",
    "OpenAITrackedPipe",
    "TrackedPipe",
]
