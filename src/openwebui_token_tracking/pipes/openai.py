"""0.1.10 import path of this tracked pipe (the code lives in ``openwebui.tracked``)."""

from ..openwebui.tracked import OpenAITrackedPipe

__all__ = ["OpenAITrackedPipe"]
