"""The admin command line ``owui-token-tracking``.

``main(argv)`` runs one command and returns its exit code (tests call it directly); the
console script calls it and exits with that code. Expected errors print one line on
stderr and exit 1 (usage errors exit 2); anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from ._app import PROG, App, Group
from .alerts import alerts
from .caps import cap
from .credit_group import credit_group
from .database import database
from .group_links import COMMANDS as GROUP_LINK_COMMANDS
from .init import init
from .keys import keys
from .pricing import pricing
from .pricing_resolve import resolve
from .pricing_sync import sync
from .serve import serve
from .settings import settings
from .sponsored import sponsored
from .usage import balance, usage
from .user import user

__all__ = ["cli", "main", "run"]


@click.group(cls=Group, name=PROG)
@click.option("--database-url", envvar="DATABASE_URL", show_envvar=True,
              help="SQLAlchemy URL of Open WebUI's database (default: DATA_DIR/webui.db).")
@click.version_option(package_name="openwebui-token-tracking", prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context, database_url: str | None) -> None:
    """Meter and limit LLM usage in Open WebUI, in credits."""
    app = ctx.ensure_object(App)
    if database_url and not app.database_url:
        app.database_url = database_url


pricing.add_command(sync)
pricing.add_command(resolve)
for sub in GROUP_LINK_COMMANDS:
    credit_group.add_command(sub)
for command in (init, database, pricing, settings, credit_group, cap, sponsored, user, usage,
                balance, alerts, keys, serve):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name=PROG,
                          standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


def run() -> NoReturn:
    """Console-script style entry: exit the process with :func:`main`'s code."""
    sys.exit(main())
