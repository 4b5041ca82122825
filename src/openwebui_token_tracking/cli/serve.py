"""``serve``: the dashboards, JSON API and metrics (needs the ``service`` extra)."""

from __future__ import annotations

import secrets

import click

from ._app import get_app, handles


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--demo", is_flag=True,
              help="Load a demo data set (only into an empty ledger) to see real pages at once.")
@click.option("--admin-token", envvar="TOKEN_TRACKING_ADMIN_TOKEN", show_envvar=True,
              help="Static admin token for signing in (with --demo a random one is made).")
@click.option("--gateway-config", envvar="TOKEN_TRACKING_GATEWAY_CONFIG", show_envvar=True,
              type=click.Path(dir_okay=False),
              help="TOML file of the /v1 gateway's upstreams (default: provider API keys "
                   "in the environment).")
@handles()
def serve(host: str, port: int, demo: bool, admin_token: str | None,
          gateway_config: str | None) -> None:
    """Serve the admin and personal dashboards, the JSON API, /metrics and the metered
    OpenAI-compatible endpoint /v1.

    Without DATABASE_URL it runs on the embedded SQLite database DATA_DIR/webui.db
    (./data/webui.db), which it creates and initialises.
    """
    try:
        from ..service import serve as run_service
    except ImportError as exc:
        raise click.ClickException(
            "the service needs its extra: pip install 'openwebui-token-tracking[service]'"
        ) from exc
    if demo and not admin_token:
        admin_token = secrets.token_urlsafe(16)
        click.echo(f"Demo admin token: {admin_token}")
    if admin_token:
        click.echo(f"Sign in at http://{host}:{port}/login with the admin token.")
    run_service(host, port, get_app().database_url, demo, admin_token=admin_token,
                gateway_config=gateway_config)
