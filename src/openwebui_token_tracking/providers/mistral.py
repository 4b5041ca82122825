"""Mistral's chat completions: OpenAI-like, with its own usage and content shapes.

Mistral puts ``usage`` (``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
with ``prompt_tokens_details.cached_tokens`` when its prompt cache was hit) on the
last stream chunk without being asked, names the seed ``random_seed``, and its
reasoning models (Magistral) send ``content`` as a list of ``text`` and ``thinking``
chunks instead of a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..accounting.usage import Usage
from .content import MB
from .openai_chat import OpenAIChat, openai_messages
from .protocol import Delta, token_count

PASSTHROUGH = frozenset({
    "temperature", "top_p", "max_tokens", "stop", "random_seed", "n", "tools",
    "tool_choice", "parallel_tool_calls", "response_format", "presence_penalty",
    "frequency_penalty", "safe_prompt", "prompt_mode",
})


def usage_from_mistral(data: Mapping[str, Any] | None) -> Usage | None:
    """Mistral's ``usage``; cached prompt tokens (if reported) are split out."""
    if not isinstance(data, Mapping):
        return None
    prompt = token_count(data.get("prompt_tokens"))
    details = data.get("prompt_tokens_details") or {}
    cached = min(token_count(details.get("cached_tokens")
                             or data.get("num_cached_tokens")), prompt)
    return Usage(input_tokens=prompt - cached, cached_input_tokens=cached,
                 output_tokens=token_count(data.get("completion_tokens")))


def _chunks(content: Any, reasoning: bool = False) -> list[Delta]:
    if isinstance(content, str):
        return [Delta(content, reasoning)] if content else []
    out: list[Delta] = []
    for chunk in content if isinstance(content, list) else []:
        if not isinstance(chunk, Mapping):
            continue
        if chunk.get("type") == "text" and chunk.get("text"):
            out.append(Delta(str(chunk["text"]), reasoning))
        elif chunk.get("type") == "thinking":
            out.extend(_chunks(chunk.get("thinking"), reasoning=True))
    return out


def mistral_delta(choice: Mapping[str, Any], key: str) -> list[Delta]:
    message = choice.get(key) or {}
    return _chunks(message.get("content"))


class Mistral(OpenAIChat):
    """The Mistral chat-completions wire protocol."""

    name = "mistral"
    default_base_url = "https://api.mistral.ai/v1"
    max_image_bytes = 10 * MB
    read_usage = staticmethod(usage_from_mistral)
    read_delta = staticmethod(mistral_delta)

    def payload(self, model_id: str, body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {k: v for k, v in body.items() if k in PASSTHROUGH}
        if "seed" in body and "random_seed" not in payload:
            payload["random_seed"] = body["seed"]
        if "max_completion_tokens" in body and "max_tokens" not in payload:
            payload["max_tokens"] = body["max_completion_tokens"]
        payload["model"] = model_id
        payload["messages"] = openai_messages(body, self.name, self.max_image_bytes)
        payload["stream"] = stream
        return payload

    def serves_chat(self, entry: Mapping[str, Any]) -> bool:
        """Mistral's list says: ``capabilities.completion_chat`` (false for embeddings,
        OCR, moderation)."""
        capabilities = entry.get("capabilities")
        return not isinstance(capabilities, Mapping) or \
            capabilities.get("completion_chat") is not False

PROTOCOL = Mistral()
