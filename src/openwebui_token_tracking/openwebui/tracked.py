"""The four tracked pipes; an admin's Function is ``Pipe = OpenAITrackedPipe``.

Environment defaults (used while the valve is empty):

=================  ===============================  ==================================
pipe               API key                          base URL
=================  ===============================  ==================================
OpenAI(-compat.)   ``OPENAI_API_KEY``               ``OPENAI_API_BASE_URL``
Anthropic          ``ANTHROPIC_API_KEY``            ``ANTHROPIC_API_BASE_URL``
Google Gemini      ``GOOGLE_API_KEY``/``GEMINI_…``  ``GEMINI_API_BASE_URL``
Mistral            ``MISTRAL_API_KEY``              ``MISTRAL_API_BASE_URL``
=================  ===============================  ==================================

The database is the ``DATABASE_URL`` valve, else Open WebUI's ``DATABASE_URL``.
"""

from __future__ import annotations

from typing import ClassVar

from ..providers.anthropic import PROTOCOL as ANTHROPIC
from ..providers.gemini import PROTOCOL as GEMINI
from ..providers.mistral import PROTOCOL as MISTRAL
from ..providers.openai_chat import PROTOCOL as OPENAI
from .pipe import TrackedPipe
from .valves import PipeValves


class OpenAITrackedPipe(TrackedPipe):
    """OpenAI chat completions, or any OpenAI-compatible server (set base URL/provider)."""

    protocol = OPENAI
    provider_default = "openai"
    key_env = ("OPENAI_API_KEY",)
    url_env = ("OPENAI_API_BASE_URL", "OPENAI_BASE_URL")


class AnthropicValves(PipeValves):
    LEGACY_NAMES: ClassVar = {"ANTHROPIC_API_KEY": "API_KEY"}


class AnthropicTrackedPipe(TrackedPipe):
    """Anthropic's Messages API."""

    protocol = ANTHROPIC
    provider_default = "anthropic"
    key_env = ("ANTHROPIC_API_KEY",)
    url_env = ("ANTHROPIC_API_BASE_URL",)
    Valves = AnthropicValves


class GoogleValves(PipeValves):
    LEGACY_NAMES: ClassVar = {"GOOGLE_API_KEY": "API_KEY"}


class GoogleTrackedPipe(TrackedPipe):
    """Google Gemini; bills provider ``google_genai`` (0.1.10's name) by default."""

    protocol = GEMINI
    provider_default = "google_genai"
    key_env = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    url_env = ("GEMINI_API_BASE_URL",)
    Valves = GoogleValves


class MistralValves(PipeValves):
    LEGACY_NAMES: ClassVar = {"MISTRAL_API_KEY": "API_KEY"}


class MistralTrackedPipe(TrackedPipe):
    """Mistral's chat completions."""

    protocol = MISTRAL
    provider_default = "mistral"
    key_env = ("MISTRAL_API_KEY",)
    url_env = ("MISTRAL_API_BASE_URL",)
    Valves = MistralValves
