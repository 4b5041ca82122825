"""0.1.10 import path of this tracked pipe (the code lives in ``openwebui.tracked``)."""

from ..openwebui.tracked import AnthropicTrackedPipe

__all__ = ["AnthropicTrackedPipe"]
