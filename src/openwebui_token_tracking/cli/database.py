"""``database``: our schema in Open WebUI's database (own Alembic version table)."""

from __future__ import annotations

import click

from ..accountant import translate_db_errors
from ..storage import migrate
from ..storage.engine import redact
from ._app import Group, get_app, handles, json_option, legacy_url_argument
from ._output import emit_json


@click.group(name="database", cls=Group)
def database() -> None:
    """Create and upgrade the token tracking tables."""


def run_migrations() -> tuple[str | None, str]:
    app = get_app()
    with translate_db_errors(app.url):
        return migrate.upgrade(app.engine())


@database.command(name="migrate")
@legacy_url_argument
@handles()
def migrate_() -> None:
    """Bring the token tracking tables to the newest schema (safe to repeat)."""
    before, after = run_migrations()
    where = redact(get_app().url)
    if before == after:
        click.echo(f"Database {where} is up to date (revision {after}).")
    else:
        click.echo(f"Migrated {where} from revision {before or '(none)'} to {after}.")


@database.command()
@json_option
@handles()
def current(as_json: bool) -> None:
    """Show the schema revision of the database and the newest one."""
    app = get_app()
    with translate_db_errors(app.url):
        revision = migrate.current_revision(app.engine())
    head = migrate.head_revision()
    if as_json:
        emit_json({"current": revision, "head": head, "up_to_date": revision == head})
        return
    state = "up to date" if revision == head else f"run `database migrate` to reach {head}"
    click.echo(f"{revision or '(no token tracking tables)'} ({state})")
