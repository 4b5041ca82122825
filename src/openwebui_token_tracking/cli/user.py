"""``user find``: look users up in Open WebUI's ``user`` table (read only)."""

from __future__ import annotations

import click

from ..errors import InvalidInputError, NotFoundError
from ..storage.users import find_users
from ._app import Group, get_app, handles, json_option, legacy_url_argument
from ._output import emit_json, emit_table


@click.group(name="user", cls=Group)
def user() -> None:
    """Find Open WebUI users."""


@user.command()
@click.option("--id", "user_id", help="User id (exact).")
@click.option("--name", help="User name (exact).")
@click.option("--email", help="Email address (exact).")
@legacy_url_argument
@json_option
@handles(InvalidInputError, NotFoundError)
def find(user_id: str | None, name: str | None, email: str | None, as_json: bool) -> None:
    """Users matching every criterion given; exit code 1 when none does."""
    with get_app().session() as s:
        users = find_users(s, user_id=user_id, name=name, email=email)
    if not users:
        raise NotFoundError("no user matches the given id/name/email")
    if as_json:
        emit_json(users)
        return
    emit_table(["id", "name", "email"], [[u["id"], u["name"], u["email"]] for u in users])
