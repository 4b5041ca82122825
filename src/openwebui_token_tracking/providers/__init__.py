"""Wire protocols: one module per protocol, one SSE reader, one error boundary.

OpenAI-compatible servers (vLLM, Ollama's /v1, TGI, OpenRouter, Azure OpenAI) use
:mod:`.openai_chat` with their own base URL, key, auth header and query parameters.
"""

from .anthropic import PROTOCOL as ANTHROPIC
from .client import ProviderStream, complete, open_stream
from .gemini import PROTOCOL as GEMINI
from .mistral import PROTOCOL as MISTRAL
from .openai_chat import PROTOCOL as OPENAI
from .protocol import Completion, Connection, Delta, HTTPCall, WireProtocol

__all__ = [
    "ANTHROPIC",
    "GEMINI",
    "MISTRAL",
    "OPENAI",
    "Completion",
    "Connection",
    "Delta",
    "HTTPCall",
    "ProviderStream",
    "WireProtocol",
    "complete",
    "open_stream",
]
