"""0.1.10's import paths for the tracked pipes (the code lives in ``openwebui/``).

An admin's Function is two lines, e.g.::

    from openwebui_token_tracking.pipes.anthropic import AnthropicTrackedPipe
    Pipe = AnthropicTrackedPipe
"""

from ..openwebui.pipe import TrackedPipe as BaseTrackedPipe
from ..openwebui.tracked import (
    AnthropicTrackedPipe,
    GoogleTrackedPipe,
    MistralTrackedPipe,
    OpenAITrackedPipe,
)

__all__ = [
    "AnthropicTrackedPipe",
    "BaseTrackedPipe",
    "GoogleTrackedPipe",
    "MistralTrackedPipe",
    "OpenAITrackedPipe",
]
