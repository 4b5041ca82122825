"""The web service: admin and personal dashboards, a JSON API, Prometheus metrics.

Needs the ``service`` extra (FastAPI, uvicorn, Jinja2, python-multipart).
"""

from .app import create_app
from .server import prepare_database, serve

__all__ = ["create_app", "prepare_database", "serve"]
