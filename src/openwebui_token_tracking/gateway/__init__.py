"""The metered OpenAI-compatible gateway served under ``/v1`` by ``owui-token-tracking
serve``: API clients call models with their Open WebUI API key and are admitted,
limited and charged exactly as the tracked pipes charge chat requests.

``config`` (upstreams) -> ``catalog`` (models) -> ``service`` (caller, admission,
relay through ``metering``) -> ``wire``/``stream`` (OpenAI format) -> ``router``.
Needs the ``service`` extra (FastAPI, uvicorn).
"""

from .config import Upstream, load_upstreams

__all__ = ["Upstream", "load_upstreams"]
