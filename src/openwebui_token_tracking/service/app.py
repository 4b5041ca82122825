"""The ASGI application: dashboards, JSON API, metrics, all on one shared engine."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..accountant import Accountant, utcnow
from ..errors import DatabaseError, TokenTrackingError
from ..gateway.config import Upstream
from ..gateway.router import routes as gateway_routes
from ..gateway.service import Gateway
from ..storage.engine import get_engine
from . import alerts_api, api, api_limits, forms, forms_limits, keys_api, pages
from .auth import Authenticator, AuthError
from .deps import ServiceState, status_of
from .formatting import install_filters

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent


def wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith(("/api/", "/v1/")) or path in ("/metrics", "/healthz"))


def _install_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    @app.exception_handler(AuthError)
    async def on_auth(request: Request, exc: AuthError) -> Response:
        if wants_html(request):
            if exc.status_code == 401:
                target = quote(request.url.path, safe="/")
                return RedirectResponse(f"/login?next={target}", status_code=303)
            return templates.TemplateResponse(
                request, "error.html", {"message": str(exc), "principal": None},
                status_code=exc.status_code)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": str(exc)}, exc.status_code, headers=headers)

    @app.exception_handler(TokenTrackingError)
    async def on_domain(request: Request, exc: TokenTrackingError) -> Response:
        code = status_of(exc)
        if code >= 500 or isinstance(exc, DatabaseError):
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        if wants_html(request):
            return templates.TemplateResponse(
                request, "error.html", {"message": str(exc), "principal": None},
                status_code=code)
        return JSONResponse({"detail": str(exc)}, code)


def create_app(database_url: str | None = None, *, admin_token: str | None = None,
               openwebui_url: str | None = None, openwebui_secret: str | None = None,
               clock: Callable[[], datetime] = utcnow, secure_cookies: bool = False,
               http_transport: httpx.BaseTransport | None = None,
               upstreams: list[Upstream] | None = None,
               upstream_transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The service on the database at ``database_url`` (default: Open WebUI's, as the
    pipes resolve it). The schema must already be migrated (``serve`` does that).

    ``admin_token``: a static bearer token with admin rights. ``openwebui_secret``:
    Open WebUI's ``WEBUI_SECRET_KEY``, to verify its session tokens locally.
    ``openwebui_url``: the instance that verifies tokens and API keys otherwise.
    ``secure_cookies``: mark the session cookie ``Secure`` (serve over HTTPS).
    ``upstreams``: the providers the metered gateway under ``/v1`` forwards to
    (``gateway.load_upstreams``); none: it serves no model.
    """
    engine = get_engine(database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.gateway.aclose()

    templates = Jinja2Templates(directory=HERE / "templates")
    install_filters(templates.env)
    app = FastAPI(
        title="Open WebUI token tracking",
        version="1",
        summary="Credits, usage and limits of Open WebUI users.",
        description="Every endpoint needs `Authorization: Bearer <token>`: an Open WebUI "
                    "session token or API key, or the service's static admin token. "
                    "Credits are decimal strings.",
        # FastAPI's interactive docs pull their scripts from a CDN; we ship no CDN
        # assets, so only the spec itself is served (/openapi.json).
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    accountant = Accountant(engine, clock=clock)
    auth = Authenticator(engine, admin_token=admin_token, openwebui_url=openwebui_url,
                         openwebui_secret=openwebui_secret, transport=http_transport)
    app.state.gateway = Gateway(accountant, auth, upstreams or [], upstream_transport)
    app.state.tt = ServiceState(
        accountant=accountant,
        auth=auth,
        templates=templates,
        csrf_secret=secrets.token_bytes(32),
        secure_cookies=secure_cookies,
    )
    _install_handlers(app, templates)
    app.router.routes[:0] = gateway_routes  # first: the hot path matches at once
    app.include_router(api.router)
    app.include_router(alerts_api.router)
    app.include_router(keys_api.router)
    app.include_router(api_limits.router)
    app.include_router(pages.router)
    app.include_router(forms.router)
    app.include_router(forms_limits.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app
