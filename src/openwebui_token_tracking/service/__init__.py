"""The web service: admin and personal dashboards, a JSON API, Prometheus metrics.

Needs the ``service`` extra (FastAPI, uvicorn, Jinja2, python-multipart).

``create_app``, ``prepare_database`` and ``serve`` are imported on first use, so that a
module of the service (``service.auth``) can be imported on its own: the gateway uses
the service's authentication, and the service's app mounts the gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .server import prepare_database, serve

__all__ = ["create_app", "prepare_database", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app
        return create_app
    if name in ("prepare_database", "serve"):
        from . import server
        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
