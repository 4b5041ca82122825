"""Starting the service: prepare the database, build the app, run uvicorn."""

from __future__ import annotations

import gc
import logging
import os
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..accountant import translate_db_errors, utcnow
from ..alerts.deliverer import AlertDeliverer, start_background
from ..gateway.config import load_upstreams
from ..storage import migrate, settings_store
from ..storage.engine import default_database_url, get_engine, redact
from . import demo
from .app import create_app

logger = logging.getLogger(__name__)
ALERT_POLL_SECONDS = 30.0
"""How often the service's background deliverer looks for queued alerts."""


def prepare_database(engine: Engine, *, load_demo: bool = False,
                     now: datetime | None = None) -> bool:
    """Migrate our tables, store default settings, optionally load the demo data set.

    Idempotent. Returns True when demo data was loaded now.
    """
    with translate_db_errors(str(engine.url)):
        migrate.upgrade(engine)
        with Session(engine) as s, s.begin():
            settings_store.ensure_defaults(s)
        return demo.load_demo(engine, now or utcnow()) if load_demo else False


def freeze_startup_objects() -> None:
    """Keep what startup built (modules, the price data, the app) out of the garbage
    collector's full passes: a full pass walks every object, and over the ~150,000 the
    service holds it stopped the event loop, and every stream in it, for 45-70 ms a
    few times a minute under load. Objects made later are collected as usual."""
    gc.collect()
    gc.freeze()


def serve(host: str = "127.0.0.1", port: int = 8000, database_url: str | None = None,
          demo: bool = False, admin_token: str | None = None,
          gateway_config: str | None = None) -> None:
    """Run the service until interrupted (what ``owui-token-tracking serve`` calls).

    ``database_url`` None: ``DATABASE_URL``, else the embedded SQLite database
    ``$DATA_DIR/webui.db`` (``./data/webui.db``), created and initialised here. Sign-in
    is configured from the environment: ``TOKEN_TRACKING_ADMIN_TOKEN`` (static admin
    token), ``WEBUI_SECRET_KEY`` (verify Open WebUI session tokens), ``OPENWEBUI_URL``
    (ask that instance about tokens and API keys). The metered gateway's upstreams come
    from ``gateway_config`` (TOML) or the environment (``gateway.config``); a bad
    configuration raises ``ConfigurationError`` before anything starts. A background
    thread delivers the queued budget alerts (webhook, e-mail) while it runs.
    """
    import uvicorn

    upstreams = load_upstreams(gateway_config)
    url = database_url or default_database_url()
    engine = get_engine(url)
    loaded = prepare_database(engine, load_demo=demo)
    admin_token = admin_token or os.environ.get("TOKEN_TRACKING_ADMIN_TOKEN") or None
    app = create_app(url, admin_token=admin_token,
                     openwebui_url=os.environ.get("OPENWEBUI_URL") or None,
                     openwebui_secret=os.environ.get("WEBUI_SECRET_KEY") or None,
                     secure_cookies=os.environ.get("TOKEN_TRACKING_SECURE_COOKIES") == "1",
                     upstreams=upstreams)
    logger.info("metered gateway at http://%s:%d/v1 forwards to %s", host, port,
                ", ".join(repr(u) for u in upstreams) or "no upstream (set a provider's "
                "API key or --gateway-config)")
    start_background(AlertDeliverer(engine), poll_seconds=ALERT_POLL_SECONDS)
    logger.info("serving %s on http://%s:%d%s", redact(url), host, port,
                " with demo data" if loaded else "")
    if not (admin_token or os.environ.get("OPENWEBUI_URL") or os.environ.get("WEBUI_SECRET_KEY")):
        logger.warning("no sign-in configured: set TOKEN_TRACKING_ADMIN_TOKEN, "
                       "WEBUI_SECRET_KEY or OPENWEBUI_URL to log in")
    freeze_startup_objects()
    uvicorn.run(app, host=host, port=port, log_level="info")
